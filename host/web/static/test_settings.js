// Cart General: while Test Settings runs, fetch its state every second until its answer is in.
(function () {
  var box = document.getElementById("test-live");
  if (!box) return;
  function pending() {
    var state = document.getElementById("test-settings");
    return state && state.getAttribute("data-pending") === "yes";
  }
  function poll() {
    if (!pending()) return;
    fetch(box.getAttribute("data-src"), { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) { box.innerHTML = html; })
      .catch(function () {})
      .then(function () { setTimeout(poll, 1000); });
  }
  setTimeout(poll, 1000);
})();
