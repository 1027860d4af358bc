// The live view of a streaming reply. The kernel sends custom messages:
//   {blocks: [html, ...]}  finished blocks, already sanitized in the kernel (nh3): appended once
//   {tail: text}           the block still growing, replaced (shown as text, never parsed as HTML)
//   {append: text}         more text for the growing block
//   {code: bool}           whether the growing block is inside a code fence
//   {status: text}         the status line
// State is kept per model, so a view created again (a re-rendered output) shows everything.
const states = new WeakMap();

function stateOf(model) {
  let state = states.get(model);
  if (!state) {
    state = { blocks: [], tail: "", code: false, status: "", views: new Set() };
    states.set(model, state);
    model.on("msg:custom", (msg) => {
      for (const view of state.views) view.before(msg);
      if (msg.blocks) state.blocks.push(...msg.blocks);
      if (typeof msg.tail === "string") state.tail = msg.tail;
      if (typeof msg.append === "string") state.tail += msg.append;
      if (typeof msg.code === "boolean") state.code = msg.code;
      if (typeof msg.status === "string") state.status = msg.status;
      for (const view of state.views) view.after(msg);
    });
  }
  return state;
}

function render({ model, el }) {
  const state = stateOf(model);
  el.classList.add("mistral-live");
  const body = document.createElement("div");
  body.className = "mistral-live-body jp-RenderedHTMLCommon jp-RenderedMarkdown";
  const tail = document.createElement("div");
  tail.className = "mistral-live-tail";
  const status = document.createElement("div");
  status.className = "mistral-live-status";
  el.append(body, tail, status);

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

  const view = {
    before() {},
    after(msg) {
      if (msg.blocks) addBlocks(msg.blocks);
      if (typeof msg.tail === "string") tail.textContent = msg.tail;
      if (typeof msg.append === "string") tail.append(document.createTextNode(msg.append));
      if (typeof msg.code === "boolean") tail.classList.toggle("mistral-live-code", msg.code);
      if (typeof msg.status === "string") status.textContent = msg.status;
    },
  };
  state.views.add(view);
  return () => state.views.delete(view);
}

export default { render };
