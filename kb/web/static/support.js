/* kb — the agent's ticket page: who else is on it (server-sent events), who is writing, and a
   reply that came in meanwhile. Without JavaScript the page still says who was there when it
   loaded, and a reply sent after a colleague's is held on the server all the same. */
(function () {
  "use strict";
  var region = document.querySelector("[data-presence]");
  if (!region || !window.EventSource) return;
  var banner = document.querySelector("[data-new-reply]");
  var reply = document.querySelector("textarea[data-typing]");
  var token = document.querySelector("input[name=csrf]");

  function show(people) {
    region.textContent = "";
    if (!people.length) return;
    var line = document.createElement("p");
    line.className = "presence__who";
    people.forEach(function (person, i) {
      if (i) line.appendChild(document.createTextNode(" · "));
      var span = document.createElement("span");
      span.className = "presence__person" + (person.ecrit ? " presence__person--writing" : "");
      span.textContent = person.texte;
      line.appendChild(span);
    });
    region.appendChild(line);
  }

  var source = new EventSource(region.dataset.presence);
  source.addEventListener("presence", function (e) {
    try { show(JSON.parse(e.data)); } catch (err) { /* a garbled event: keep the last one */ }
  });
  source.addEventListener("message", function (e) {
    var data = {};
    try { data = JSON.parse(e.data); } catch (err) { return; }
    if (!banner) return;
    banner.textContent = "";
    banner.appendChild(document.createTextNode(
      "Nouveau message de " + (data.auteur || "quelqu'un") + " dans ce ticket. "));
    var link = document.createElement("a");
    link.href = window.location.pathname + "#message-" + data.id;
    link.textContent = "Afficher les échanges à jour";
    // What is being typed is kept by uploads.js (local storage) across the reload.
    link.addEventListener("click", function (ev) {
      ev.preventDefault();
      window.location.assign(window.location.pathname + "#message-" + data.id);
      window.location.reload();
    });
    banner.appendChild(link);
    banner.hidden = false;
  });
  window.addEventListener("pagehide", function () { source.close(); });

  // Typing: say so at most every 4 seconds, while keys are pressed.
  if (reply && token && window.fetch) {
    var last = 0;
    reply.addEventListener("input", function () {
      var now = Date.now();
      if (now - last < 4000) return;
      last = now;
      fetch(reply.dataset.typing, {
        method: "POST", headers: { "X-CSRF-Token": token.value }, credentials: "same-origin"
      }).catch(function () { /* presence is a courtesy: never in the way of the reply */ });
    });
  }
})();
