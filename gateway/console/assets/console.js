// Refreshes the panel every two seconds from /console/panel, so the page
// follows the cluster without a reload; a failed fetch marks it stale.
(function () {
  var panel = document.getElementById("panel");
  var stale = document.getElementById("stale");
  if (!panel || !window.fetch) return;
  function refresh() {
    fetch(panel.dataset.refresh, { cache: "no-store", credentials: "same-origin" })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.text(); })
      .then(function (html) { panel.innerHTML = html; stale.hidden = true; })
      .catch(function () { stale.hidden = false; })
      .finally(function () { setTimeout(refresh, 2000); });
  }
  setTimeout(refresh, 2000);
})();
