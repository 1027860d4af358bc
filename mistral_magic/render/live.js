// The live view of a streaming reply. The kernel sends custom messages:
//   {blocks: [html, ...]}  finished blocks, already sanitized in the kernel (nh3): appended once
//   {tail: text}           the block still growing, replaced (shown as text, never parsed as HTML)
//   {append: text}         more text for the growing block
//   {code: bool}           whether the growing block is inside a code fence
//   {status: text}         the status line
//   {think: text}          more thinking (reasoning models), shown as text in a "Thinking…" section
//   {thought: true}        the answer began: the thinking section collapses
// State is kept per model, so a view created again (a re-rendered output) shows everything.
const states = new WeakMap();

function stateOf(model) {
  let state = states.get(model);
  if (!state) {
    state = { blocks: [], tail: "", code: false, status: "", thinking: "", thought: false, views: new Set() };
    states.set(model, state);
    model.on("msg:custom", (msg) => {
      for (const view of state.views) view.before(msg);
      if (msg.blocks) state.blocks.push(...msg.blocks);
      if (typeof msg.tail === "string") state.tail = msg.tail;
      if (typeof msg.append === "string") state.tail += msg.append;
      if (typeof msg.code === "boolean") state.code = msg.code;
      if (typeof msg.status === "string") state.status = msg.status;
      if (typeof msg.think === "string") state.thinking += msg.think;
      if (msg.thought === true) state.thought = true;
      for (const view of state.views) view.after(msg);
    });
  }
  return state;
}

function element(tag, className) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  return node;
}

function render({ model, el }) {
  const state = stateOf(model);
  el.classList.add("mistral-live");
  const thinking = element("details", "mistral-live-thinking");
  const summary = element("summary", "");
  summary.textContent = "Thinking…";
  const thoughts = element("div", "mistral-live-thoughts");
  thinking.append(summary, thoughts);
  const body = element("div", "mistral-live-body jp-RenderedHTMLCommon jp-RenderedMarkdown");
  const tail = element("div", "mistral-live-tail");
  const status = element("div", "mistral-live-status");
  el.append(thinking, body, tail, status);
  thinking.hidden = true; // until thinking arrives; open while it streams, closed once the answer begins
  const showThinking = (thought) => {
    if (thinking.hidden && state.thinking) {
      thinking.hidden = false;
      thinking.open = !state.thought;
    }
    if (thought) thinking.open = false;
  };
  const addThinking = (text) => {
    const atEnd = thoughts.scrollTop + thoughts.clientHeight >= thoughts.scrollHeight - 4;
    thoughts.append(document.createTextNode(text)); // model output: text, never parsed as HTML
    if (atEnd) thoughts.scrollTop = thoughts.scrollHeight; // follow the newest, unless scrolled up
  };

  const addBlocks = (blocks) => {
    for (const html of blocks) {
      const block = document.createElement("div");
      block.innerHTML = html; // sanitized in the kernel; see mistral_magic/render/html.py
      body.append(block);
    }
  };
  addBlocks(state.blocks);
  tail.textContent = state.tail;
  tail.classList.toggle("mistral-live-code", state.code);
  status.textContent = state.status;
  thoughts.textContent = state.thinking;
  showThinking(false);

  const view = {
    before() {},
    after(msg) {
      if (msg.blocks) addBlocks(msg.blocks);
      if (typeof msg.tail === "string") tail.textContent = msg.tail;
      if (typeof msg.append === "string") tail.append(document.createTextNode(msg.append));
      if (typeof msg.code === "boolean") tail.classList.toggle("mistral-live-code", msg.code);
      if (typeof msg.status === "string") status.textContent = msg.status;
      if (typeof msg.think === "string") addThinking(msg.think);
      if (typeof msg.think === "string" || msg.thought === true) showThinking(msg.thought === true);
    },
  };
  state.views.add(view);
  return () => state.views.delete(view);
}

export default { render };
