// The generation page's enhancements. Without this file the form still works: the
// number boxes are the fields, the select lists every voice.
(() => {
  "use strict";

  function enhance(root) {
    const form = root.querySelector ? root.querySelector("[data-generate-form]") : null;
    if (!form || form.dataset.enhanced) return;
    form.dataset.enhanced = "true";

    // Live character counter.
    const text = form.querySelector("[data-char-source]");
    const counter = form.querySelector("[data-char-counter]");
    const count = form.querySelector("[data-char-count]");
    if (text && counter && count) {
      const max = Number(counter.dataset.max);
      const update = () => {
        // The server trims and counts a line break as one character; so do we.
        const n = [...text.value.replace(/\r\n?/g, "\n").trim()].length;
        count.textContent = n.toLocaleString("en");
        counter.classList.toggle("is-over", n > max);
      };
      text.addEventListener("input", update);
      update();
    }

    // Voice filter: hide options that don't match what is typed.
    const filter = form.querySelector("[data-voice-filter]");
    const select = form.querySelector("[data-voice-select]");
    if (filter && select) {
      filter.hidden = false;
      filter.addEventListener("input", () => {
        const words = filter.value.toLowerCase().split(/\s+/).filter(Boolean);
        for (const option of select.querySelectorAll("option[data-search]")) {
          const haystack = option.dataset.search.toLowerCase();
          const match = words.every((w) => haystack.includes(w));
          option.hidden = !match;
          option.disabled = !match && !option.selected;
        }
        for (const group of select.querySelectorAll("optgroup")) {
          group.hidden = ![...group.querySelectorAll("option")].some((o) => !o.hidden);
        }
      });
    }

    // Sliders mirror the number boxes; the number box is what the form sends.
    for (const param of form.querySelectorAll("[data-param]")) {
      const box = param.querySelector("[data-param-value]");
      const slider = param.querySelector("[data-param-slider]");
      if (!box || !slider) continue;
      slider.hidden = false;
      slider.removeAttribute("aria-hidden");
      slider.tabIndex = 0;
      slider.setAttribute("aria-label", param.querySelector("label").textContent);
      const floor = Number(slider.dataset.floor);
      slider.addEventListener("input", () => {
        box.value = String(Math.max(floor, Number(slider.value)));
      });
      box.addEventListener("input", () => {
        if (box.value !== "" && !Number.isNaN(Number(box.value))) slider.value = box.value;
      });
    }

    const reset = form.querySelector("[data-reset-params]");
    if (reset) {
      reset.hidden = false;
      reset.addEventListener("click", () => {
        for (const box of form.querySelectorAll("[data-param-value]")) {
          box.value = box.dataset.default;
          box.dispatchEvent(new Event("input", { bubbles: true }));
        }
      });
    }
  }

  // htmx leaves 4xx answers unswapped. A refused form (422) is the form again with its
  // errors inline: swap it. Anything else (429 too many, 409, a refused retry) keeps
  // what is on the page and shows the server's sentence above it.
  document.addEventListener("htmx:beforeSwap", (event) => {
    const { xhr, target } = event.detail;
    if (xhr.status < 400) return;
    if (xhr.status === 422 && target.matches("#generator")) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
      return;
    }
    const box = target.closest("#generator, .generation-status");
    if (!box) return;
    const text = new DOMParser().parseFromString(xhr.responseText, "text/html").body.textContent;
    let slot = box.querySelector("[data-error-slot]");
    if (!slot) {
      slot = document.createElement("div");
      slot.dataset.errorSlot = "";
      box.prepend(slot);
    }
    slot.className = "error-fragment";
    slot.setAttribute("role", "alert");
    slot.textContent = text.trim() || `The request failed (${xhr.status}). Please try again.`;
    event.detail.shouldSwap = false;
  });

  if (window.htmx) {
    window.htmx.onLoad(enhance);
  } else {
    document.addEventListener("DOMContentLoaded", () => enhance(document));
  }
})();
