// The analytics page's one enhancement beyond htmx attributes. Without JavaScript the
// period links and the custom-range form load the whole page, which works the same.
(() => {
  "use strict";

  // A period that can't be shown comes back as the results block with the reason and
  // status 400 (htmx ignores error answers by default): show it like any other answer.
  document.addEventListener("htmx:beforeSwap", (event) => {
    if (event.detail.xhr.status === 400 && event.detail.target.matches("[data-analytics-results]")) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
})();
