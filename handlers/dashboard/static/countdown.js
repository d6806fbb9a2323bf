// Keeps the mandatory-report clocks ticking; the server already rendered them (works without JS).
(function () {
  function tick() {
    var now = Date.now();
    document.querySelectorAll(".clock[data-due]").forEach(function (el) {
      var due = Date.parse(el.getAttribute("data-due"));
      if (isNaN(due)) { return; }
      var minutes = Math.floor((due - now) / 60000);
      if (minutes >= 0) {
        el.textContent = el.getAttribute("data-left").replace("{m}", String(minutes));
        el.classList.remove("late");
      } else {
        el.textContent = el.getAttribute("data-late").replace("{m}", String(-minutes));
        el.classList.add("late");
      }
    });
  }
  tick();
  setInterval(tick, 20000);
})();
