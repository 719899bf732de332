// prechat web chat widget: placeholder (the lead writes the real one). Served after
// validators.js as one script by GET /widget.js.
(function () {
  "use strict";
  window.prechatWidget = window.prechatWidget || { version: 0 };
})();
