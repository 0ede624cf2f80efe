// The voice library's enhancements. Without this file the page still works: the
// filter form has a submit button and every preview is a native <audio controls>.
(() => {
  "use strict";

  // A round play/pause button and a thin progress bar in place of the native controls.
  function enhancePreview(audio) {
    if (audio.dataset.enhanced) return;
    audio.dataset.enhanced = "true";
    const name = audio.dataset.voiceName || "this voice";
    const player = document.createElement("div");
    player.className = "preview";
    const button = document.createElement("button");
    button.type = "button";
    button.className = "play-toggle";
    const progress = document.createElement("progress");
    progress.className = "preview-progress";
    progress.max = 1;
    progress.value = 0;
    progress.setAttribute("aria-hidden", "true");
    player.append(button, progress);
    audio.controls = false;
    audio.before(player);
    player.append(audio);

    const sync = () => {
      const playing = !audio.paused && !audio.ended;
      player.classList.toggle("is-playing", playing);
      button.setAttribute("aria-label", `${playing ? "Pause" : "Play"} ${name}`);
    };
    sync();
    button.addEventListener("click", () => {
      if (audio.paused || audio.ended) {
        audio.play().catch(() => {}); // a failed load is reported by the "error" event
      } else {
        audio.pause();
      }
    });
    for (const type of ["play", "pause", "ended"]) audio.addEventListener(type, sync);
    audio.addEventListener("timeupdate", () => {
      progress.value = audio.duration ? audio.currentTime / audio.duration : 0;
    });
    audio.addEventListener("ended", () => { progress.value = 0; });
    audio.addEventListener("error", () => {
      player.classList.add("is-broken");
      button.disabled = true;
      button.setAttribute("aria-label", `The preview of ${name} could not be loaded`);
      button.title = "The preview could not be loaded";
    });
  }

  function enhance(root) {
    for (const audio of root.querySelectorAll(".voice-card audio[data-voice-name]")) {
      enhancePreview(audio);
    }
    if (window.htmx) {
      // Typing and the selects fetch results by themselves; the button isn't needed.
      for (const el of root.querySelectorAll("[data-library-filters] [data-js-hide]")) {
        el.hidden = true;
      }
    }
    // The first card of a "Load more" page takes focus, so keyboard users continue there.
    if (root.matches && root.matches("[data-page-start]")) root.focus();
  }

  if (window.htmx) {
    // htmx.onLoad runs for the page itself and for every element htmx swaps in.
    window.htmx.onLoad(enhance);
    // Keep pushed URLs short: leave blank filters out of the query string.
    document.addEventListener("htmx:configRequest", (event) => {
      if (!event.detail.elt.closest("[data-library-filters]")) return;
      const params = event.detail.parameters;
      for (const key of [...params.keys()]) {
        if (params.get(key) === "") params.delete(key);
      }
    });
  } else {
    enhance(document);
  }
})();
