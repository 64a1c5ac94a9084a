"use strict";
// reslearn explore: draws what was precomputed in Python. Per shift (dy, dx) and border mode the
// data hold the top classes, the class map of the unshifted top class, a few channels of every
// stage and every stage's equivariance error; the only arithmetic here is up-sampling the map
// with the matrices reslearn.analysis.sampling.interpolation_matrix wrote.
(function () {
  const D = JSON.parse(document.getElementById("explore-data").textContent);
  const M = D.max_shift, SIDE = 2 * M + 1, [H, W] = D.image_size, SCALE = D.display_scale;
  const state = { image: 0, dy: 0, dx: 0, mode: D.modes[0], interpolation: "bilinear" };
  const pictures = new Map();  // data URI -> decoded HTMLImageElement
  const pixels = new Map();  // data URI -> RGBA bytes at native size

  const el = (tag, attributes = {}, ...children) => {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attributes)) {
      if (key === "text") node.textContent = value; else node.setAttribute(key, value);
    }
    children.forEach((child) => node.append(child));
    return node;
  };
  const shiftIndex = (dy, dx) => (dy + M) * SIDE + (dx + M);
  const percent = (p) => (100 * p).toFixed(1) + "%";
  // Python's round(): halves go to the even integer (the feature-map shift s / stride uses it)
  const roundHalfEven = (v) => {
    const f = Math.floor(v), d = v - f;
    return d > 0.5 ? f + 1 : d < 0.5 ? f : (f % 2 === 0 ? f : f + 1);
  };
  const bytesOf = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));

  function load(uri) {
    if (pictures.has(uri)) return Promise.resolve(pictures.get(uri));
    return new Promise((resolve, reject) => {
      const image = new Image();
      image.onload = () => { pictures.set(uri, image); resolve(image); };
      image.onerror = () => reject(new Error("an embedded picture could not be decoded"));
      image.src = uri;
    });
  }

  function rgba(uri) {
    if (!pixels.has(uri)) {
      const image = pictures.get(uri), canvas = el("canvas");
      canvas.width = image.naturalWidth; canvas.height = image.naturalHeight;
      const context = canvas.getContext("2d");
      context.drawImage(image, 0, 0);
      pixels.set(uri, context.getImageData(0, 0, canvas.width, canvas.height).data);
    }
    return pixels.get(uri);
  }

  // The input as the network saw it: shifted down by dy and right by dx; a zero-filled shift
  // uncovers the normaliser's mean (0 in normalised space), a circular one wraps around.
  function shiftedInput(network) {
    const source = rgba(D.images[state.image].png), mean = rgba(network.mean);
    const out = new Uint8ClampedArray(H * W * 4);
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        let sy = y - state.dy, sx = x - state.dx, from = source, o = (y * W + x) * 4;
        if (state.mode === "circular") { sy = (sy + H) % H; sx = (sx + W) % W; }
        else if (sy < 0 || sy >= H || sx < 0 || sx >= W) { from = mean; sy = y; sx = x; }
        const i = (sy * W + sx) * 4;
        out[o] = from[i]; out[o + 1] = from[i + 1]; out[o + 2] = from[i + 2]; out[o + 3] = 255;
      }
    }
    return out;
  }

  // The class map at the current shift, up-sampled (U_y Q U_x^T, clipped for bicubic as
  // reslearn.analysis.sampling.upsample does) and scaled to [0, 1] like normalize_maps.
  function heat(n) {
    const network = D.networks[n], view = network.views[state.image];
    const [h, w] = network.map_size, maps = view.modes[state.mode].mapBytes;
    const q = maps.subarray(shiftIndex(state.dy, state.dx) * h * w, (shiftIndex(state.dy, state.dx) + 1) * h * w);
    const { y: Uy, x: Ux } = network.interpolation[state.interpolation];
    const rows = new Float64Array(H * w);  // U_y Q: (H, w)
    for (let i = 0; i < H; i++) for (let k = 0; k < h; k++) {
      const a = Uy[i][k];
      if (a !== 0) for (let j = 0; j < w; j++) rows[i * w + j] += a * q[k * w + j];
    }
    const out = new Float64Array(H * W);
    let low = Infinity, high = -Infinity;
    for (let i = 0; i < H; i++) for (let j = 0; j < W; j++) {
      let s = 0;
      for (let k = 0; k < w; k++) s += rows[i * w + k] * Ux[j][k];
      out[i * W + j] = s;
    }
    if (state.interpolation === "bicubic") {
      let qLow = 255, qHigh = 0;
      q.forEach((v) => { qLow = Math.min(qLow, v); qHigh = Math.max(qHigh, v); });
      out.forEach((v, i) => { out[i] = Math.min(Math.max(v, qLow), qHigh); });
    }
    out.forEach((v) => { low = Math.min(low, v); high = Math.max(high, v); });
    const span = high - low;
    out.forEach((v, i) => { out[i] = span > 0 ? (v - low) / span : 0; });
    return out;
  }

  function paint(canvas, rgbaBytes, width, height, scale) {
    const buffer = el("canvas");
    buffer.width = width; buffer.height = height;
    buffer.getContext("2d").putImageData(new ImageData(rgbaBytes, width, height), 0, 0);
    canvas.width = width * scale; canvas.height = height * scale;
    const context = canvas.getContext("2d");
    context.imageSmoothingEnabled = false;
    context.drawImage(buffer, 0, 0, canvas.width, canvas.height);
  }

  function overlay(n, input) {
    const map = heat(n), out = new Uint8ClampedArray(H * W * 4);
    for (let i = 0; i < H * W; i++) {
      const c = D.jet[Math.min(255, Math.floor(map[i] * 256))];
      for (let k = 0; k < 3; k++) out[i * 4 + k] = Math.round(0.5 * input[i * 4 + k] + 0.5 * c[k]);
      out[i * 4 + 3] = 255;
    }
    return out;
  }

  function drawTile(canvas, sheet, row, column, h, w, size) {
    canvas.width = size; canvas.height = Math.round(size * h / w);
    const context = canvas.getContext("2d");
    context.imageSmoothingEnabled = false;
    context.drawImage(pictures.get(sheet), column * w, row * h, w, h, 0, 0, canvas.width, canvas.height);
  }

  function drawGrid(canvas, network, view) {
    const cell = 9, top = view.modes[state.mode].top, context = canvas.getContext("2d");
    canvas.width = canvas.height = SIDE * cell;
    for (let dy = -M; dy <= M; dy++) for (let dx = -M; dx <= M; dx++) {
      const same = top[shiftIndex(dy, dx)][0] === view.label;
      context.fillStyle = same ? "#7dcea0" : "#e6786a";
      context.fillRect((dx + M) * cell, (dy + M) * cell, cell - 1, cell - 1);
    }
    context.strokeStyle = "#111"; context.lineWidth = 2;
    context.strokeRect((state.dx + M) * cell - 1, (state.dy + M) * cell - 1, cell + 1, cell + 1);
  }

  // The stage's error for every horizontal shift at the current vertical one: bars, darker
  // where the shift is a multiple of the stride, the current shift outlined.
  function drawErrors(canvas, errors, stride) {
    const bar = 8, height = 40, context = canvas.getContext("2d");
    canvas.width = SIDE * bar; canvas.height = height;
    const row = errors.slice(shiftIndex(state.dy, -M), shiftIndex(state.dy, M) + 1);
    const top = Math.max(1e-6, ...errors);
    row.forEach((e, i) => {
      const dx = i - M, h = Math.round((height - 2) * e / top);
      context.fillStyle = dx % stride === 0 ? "#1f618d" : "#85c1e9";
      context.fillRect(i * bar, height - h, bar - 1, h);
      if (dx === state.dx) { context.strokeStyle = "#111"; context.strokeRect(i * bar + 0.5, 0.5, bar - 2, height - 1); }
    });
  }

  function probabilityRows(n) {
    const network = D.networks[n], view = network.views[state.image], entry = view.modes[state.mode];
    const index = shiftIndex(state.dy, state.dx);
    return entry.top[index].map((k, r) => ({ index: k, name: network.classes[k], p: entry.probabilities[index][r] }));
  }

  function renderNetwork(n) {
    const network = D.networks[n], view = network.views[state.image], entry = view.modes[state.mode];
    const root = document.getElementById("network-" + n), index = shiftIndex(state.dy, state.dx);
    const input = shiftedInput(network);
    paint(root.querySelector("canvas.input"), input, W, H, SCALE);
    paint(root.querySelector("canvas.overlay"), overlay(n, input), W, H, SCALE);
    root.querySelector(".map-caption").textContent = `${network.method} of "${network.classes[view.label]}" ` +
      `(the unshifted image's top class), ${network.map_size.join("x")} map drawn ${state.interpolation}`;
    const body = root.querySelector("table.probabilities tbody");
    body.replaceChildren(...probabilityRows(n).map((row) => {
      const bar = el("div", { class: "fill", style: `width:${(100 * row.p).toFixed(1)}%` });
      return el("tr", { class: row.index === view.label ? "label" : "", "data-class": row.name, "data-p": String(row.p) },
        el("td", { text: row.name }), el("td", { class: "bar" }, bar), el("td", { class: "p", text: percent(row.p) }));
    }));
    const same = entry.top[index][0] === view.label;
    const holds = entry.top.filter((t) => t[0] === view.label).length;
    const verdict = root.querySelector(".verdict");
    verdict.className = "verdict " + (same ? "same" : "changed");
    verdict.textContent = (same ? "prediction holds" : `prediction changed to "${network.classes[entry.top[index][0]]}"`) +
      ` at this shift; it holds at ${holds} of ${entry.top.length} shifts (${state.mode} borders)`;
    drawGrid(root.querySelector("canvas.grid"), network, view);
    network.stages.forEach((stage, s) => {
      const box = root.querySelectorAll(".stage")[s], [h, w] = stage.size, sheet = entry.features[stage.name];
      const size = 96;  // every stage at one size: the pixels show its resolution
      box.querySelectorAll(".pair").forEach((pair, c) => {
        const [before, after] = pair.querySelectorAll("canvas");
        drawTile(before, view.modes[state.mode].features[stage.name], shiftIndex(0, 0), c, h, w, size);
        drawTile(after, sheet, index, c, h, w, size);
      });
      drawErrors(box.querySelector("canvas.errors"), entry.errors[stage.name], stage.stride);
      const ky = roundHalfEven(state.dy / stage.stride), kx = roundHalfEven(state.dx / stage.stride);
      const exact = state.dy % stage.stride === 0 && state.dx % stage.stride === 0;
      box.querySelector(".error").textContent = `equivariance error ${entry.errors[stage.name][index].toFixed(3)}: ` +
        `the map compared with the unshifted map moved by (${ky}, ${kx}) cells` +
        (exact ? "" : ` (the shift is not a multiple of the stride ${stage.stride})`);
    });
  }

  function buildNetwork(network, n) {
    const view = network.views[state.image];
    const stages = network.stages.map((stage) => el("div", { class: "stage" },
      el("h3", { text: `${stage.name}: stride ${stage.stride}, ${stage.size.join("x")} maps` }),
      ...view.channels[stage.name].map((c) => el("span", { class: "pair", title: `channel ${c}: unshifted | shifted` },
        el("canvas"), el("canvas"), el("div", { class: "channel", text: `channel ${c}: unshifted | shifted` }))),
      el("div", { class: "errors-row" }, el("canvas", { class: "errors", title:
        `equivariance error at every horizontal shift (-${M}..${M}) at this vertical one; dark: multiples of the stride` }),
        el("div", { class: "error" }))));
    const grid = el("canvas", { class: "grid", title: "every shift: green where the prediction holds; click to go there" });
    grid.addEventListener("click", (event) => {
      const cell = grid.getBoundingClientRect().width / SIDE;
      set({ dx: Math.floor(event.offsetX / cell) - M, dy: Math.floor(event.offsetY / cell) - M });
    });
    return el("section", { class: "network", id: "network-" + n },
      el("h2", { text: `${network.label} (${network.model})` }),
      network.note ? el("p", { class: "note", text: network.note }) : "",
      el("div", { class: "row" },
        el("figure", {}, el("canvas", { class: "input" }), el("figcaption", { text: "the input, shifted" })),
        el("figure", {}, el("canvas", { class: "overlay" }), el("figcaption", { class: "map-caption" }))),
      el("div", { class: "row" },
        el("div", { class: "probabilities-box" }, el("h3", { text: "class probabilities at this shift" }),
          el("table", { class: "probabilities" }, el("tbody")), el("p", { class: "verdict" })),
        el("figure", {}, el("h3", { text: `prediction at every shift (-${M}..${M} px)` }), grid,
          el("figcaption", { text: "rows: vertical shift, columns: horizontal; the outlined cell is the current one" }))),
      el("h3", { text: "feature maps, unshifted beside shifted (most active channels)" }), ...stages);
  }

  function render() {
    document.getElementById("dx").value = state.dx; document.getElementById("dy").value = state.dy;
    document.getElementById("dx-value").textContent = state.dx;
    document.getElementById("dy-value").textContent = state.dy;
    document.querySelectorAll("input[name=mode]").forEach((r) => { r.checked = r.value === state.mode; });
    document.querySelectorAll("input[name=interpolation]").forEach((r) => { r.checked = r.value === state.interpolation; });
    document.querySelectorAll("#images button").forEach((b, i) => b.classList.toggle("selected", i === state.image));
    D.networks.forEach((_, n) => renderNetwork(n));
  }

  function set(change) {
    if ("image" in change && change.image !== state.image) {
      Object.assign(state, change);
      document.getElementById("networks").replaceChildren(...D.networks.map(buildNetwork));
    } else Object.assign(state, change);
    state.dx = Math.max(-M, Math.min(M, state.dx)); state.dy = Math.max(-M, Math.min(M, state.dy));
    render();
  }

  function start() {
    D.networks.forEach((network) => network.views.forEach((view) => Object.values(view.modes).forEach((m) => {
      m.mapBytes = bytesOf(m.maps);
    })));
    for (const id of ["dx", "dy"]) {
      const slider = document.getElementById(id);
      slider.min = -M; slider.max = M;
      slider.addEventListener("input", () => set({ [id]: Number(slider.value) }));
    }
    document.querySelectorAll("input[name=mode]").forEach((r) => r.addEventListener("change", () => set({ mode: r.value })));
    document.querySelectorAll("input[name=interpolation]").forEach((r) =>
      r.addEventListener("change", () => set({ interpolation: r.value })));
    document.getElementById("reset").addEventListener("click", () => set({ dx: 0, dy: 0 }));
    document.getElementById("images").replaceChildren(...D.images.map((image, i) => {
      const button = el("button", { type: "button", title: image.name + (image.truth ? ` (${image.truth})` : "") },
        el("img", { src: image.png, alt: image.name }));
      button.addEventListener("click", () => set({ image: i }));
      return button;
    }));
    document.getElementById("networks").replaceChildren(...D.networks.map(buildNetwork));
    document.getElementById("footer").textContent =
      `Written by reslearn ${D.version}: ${D.command}. Feature maps are drawn with 16 levels of ` +
      "viridis, each channel on one scale for every shift.";
    render();
    document.body.dataset.ready = "true";
  }

  // For tests and the curious: the state, a setter, and what is shown.
  window.reslearnExplore = { state, set, heat, probabilities: probabilityRows };
  const uris = new Set(D.images.map((i) => i.png));
  D.networks.forEach((network) => {
    uris.add(network.mean);
    network.views.forEach((view) => Object.values(view.modes).forEach((m) => Object.values(m.features).forEach((u) => uris.add(u))));
  });
  Promise.all([...uris].map(load)).then(start).catch((error) => {
    document.body.dataset.ready = "error";
    document.getElementById("networks").textContent = "This page could not draw: " + error.message;
  });
})();
