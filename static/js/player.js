// The generation player (templates/generations/macros.html documents the markup). Without
// this file the native <audio controls> under the waveform plays the audio; with it, the
// native controls hide and the custom ones take over: play/pause, ±10 s, the readout,
// and the waveform as a seek slider that colours the played part.
//
// CSP: no inline code and no inline styles. Progress is the `width` attribute of the
// SVG clip rectangle (an attribute, not a style), so nothing here needs 'unsafe-inline'.
(() => {
  "use strict";

  const SKIP_SECONDS = 10;
  const KEY_STEPS = { ArrowLeft: -5, ArrowDown: -5, ArrowRight: 5, ArrowUp: 5, PageDown: -SKIP_SECONDS, PageUp: SKIP_SECONDS };

  function clock(seconds) {
    const whole = Math.max(0, Math.floor(seconds || 0));
    return `${Math.floor(whole / 60)}:${String(whole % 60).padStart(2, "0")}`;
  }

  function setUp(root) {
    if (root.dataset.playerReady) return;  // htmx.onLoad may see the same element twice
    const audio = root.querySelector("[data-player-audio]");
    const wave = root.querySelector("[data-player-wave]");
    const toggle = root.querySelector("[data-player-toggle]");
    const controls = root.querySelector("[data-player-controls]");
    if (!audio || !wave || !toggle || !controls) return;
    root.dataset.playerReady = "true";

    const svg = wave.querySelector("svg");
    const clip = wave.querySelector("[data-waveform-progress]");
    const viewWidth = svg && svg.viewBox && svg.viewBox.baseVal ? svg.viewBox.baseVal.width : 0;
    const elapsed = root.querySelector("[data-player-elapsed]");
    const total = root.querySelector("[data-player-total]");
    const error = root.querySelector("[data-player-error]");
    const skips = [...root.querySelectorAll("[data-player-skip]")];
    // The server's figure stands in until the browser has read the audio's header.
    const knownSeconds = Number(root.dataset.durationMs) / 1000 || 0;
    let frame = 0;
    let dragging = false;

    const duration = () => (Number.isFinite(audio.duration) && audio.duration > 0 ? audio.duration : knownSeconds);

    function render() {
      const length = duration();
      const atEnd = audio.ended || (length > 0 && audio.currentTime >= length);
      const position = atEnd ? length : audio.currentTime;
      const fraction = length > 0 ? Math.min(position / length, 1) : 0;
      if (clip && viewWidth) clip.setAttribute("width", (fraction * viewWidth).toFixed(2));
      // Totals round like the server's m:ss; elapsed counts whole seconds, and at the
      // end shows the total, so the readout never stops at "0:04 / 0:05".
      const totalText = clock(Math.round(length));
      const elapsedText = atEnd ? totalText : clock(position);
      if (elapsed.textContent !== elapsedText) elapsed.textContent = elapsedText;
      if (total.textContent !== totalText) total.textContent = totalText;
      const now = String(Math.round(position));
      if (wave.getAttribute("aria-valuenow") !== now) {
        wave.setAttribute("aria-valuenow", now);
        wave.setAttribute("aria-valuetext", `${elapsedText} of ${totalText}`);
      }
      wave.setAttribute("aria-valuemax", String(Math.round(length)));
    }

    // Smooth progress while playing; timeupdate alone moves the colour in 250 ms steps.
    function tick() {
      render();
      frame = !audio.paused && !audio.ended ? requestAnimationFrame(tick) : 0;
    }

    function sync() {
      const playing = !audio.paused && !audio.ended;
      root.classList.toggle("is-playing", playing);
      toggle.setAttribute("aria-pressed", String(playing));
      toggle.title = playing ? "Pause" : "Play";
      if (playing && !frame) frame = requestAnimationFrame(tick);
      render();
    }

    function seek(seconds) {
      const length = duration();
      if (!length) return;
      audio.currentTime = Math.min(Math.max(seconds, 0), length);
      render();
    }

    function seekToPointer(event) {
      const box = wave.getBoundingClientRect();
      if (!box.width) return;
      const fraction = Math.min(Math.max((event.clientX - box.left) / box.width, 0), 1);
      seek(fraction * duration());
    }

    function playOrPause() {
      if (audio.paused || audio.ended) {
        audio.play().catch(() => {});  // a failed load is reported by the "error" event
      } else {
        audio.pause();
      }
    }

    // Hand over from the native controls to ours.
    audio.controls = false;
    audio.hidden = true;
    toggle.hidden = false;
    controls.hidden = false;
    root.classList.add("is-enhanced");
    wave.setAttribute("role", "slider");
    wave.setAttribute("tabindex", "0");
    wave.setAttribute("aria-label", "Seek");
    wave.setAttribute("aria-valuemin", "0");

    toggle.addEventListener("click", playOrPause);
    for (const button of skips) {
      button.addEventListener("click", () => seek(audio.currentTime + Number(button.dataset.playerSkip)));
    }
    wave.addEventListener("pointerdown", (event) => {
      if (event.button !== 0 || root.classList.contains("is-broken")) return;
      dragging = true;
      wave.setPointerCapture(event.pointerId);
      seekToPointer(event);
    });
    wave.addEventListener("pointermove", (event) => { if (dragging) seekToPointer(event); });
    for (const type of ["pointerup", "pointercancel"]) {
      wave.addEventListener(type, () => { dragging = false; });
    }
    wave.addEventListener("keydown", (event) => {
      if (event.altKey || event.ctrlKey || event.metaKey) return;
      if (event.key in KEY_STEPS) {
        seek(audio.currentTime + KEY_STEPS[event.key]);
      } else if (event.key === "Home") {
        seek(0);
      } else if (event.key === "End") {
        seek(duration());
      } else if (event.key === " " || event.key === "Enter") {
        playOrPause();
      } else {
        return;
      }
      event.preventDefault();
    });
    for (const type of ["play", "playing", "pause", "ended"]) audio.addEventListener(type, sync);
    for (const type of ["timeupdate", "loadedmetadata", "durationchange", "seeked"]) {
      audio.addEventListener(type, render);
    }
    function broken() {
      root.classList.add("is-broken");
      toggle.disabled = true;
      for (const button of skips) button.disabled = true;
      wave.setAttribute("aria-disabled", "true");
      if (error) error.hidden = false;
    }
    audio.addEventListener("error", broken);
    if (audio.error) broken();  // it may have failed before this script ran
    sync();
  }

  function enhance(root) {
    if (root.matches && root.matches("[data-player]")) setUp(root);
    for (const player of root.querySelectorAll("[data-player]")) setUp(player);
  }

  if (window.htmx) {
    // Runs for the page itself and for every element htmx swaps in (the status widget
    // turns into a player when its generation finishes).
    window.htmx.onLoad(enhance);
  } else if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", () => enhance(document));
  } else {
    enhance(document);
  }
})();
