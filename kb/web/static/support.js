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
    var link = document.createElement("a");
    link.href = window.location.pathname + "#message-" + data.id;
    link.textContent = "Afficher les échanges à jour";
    // What is being typed is kept by uploads.js (local storage) across the reload.
    link.addEventListener("click", function (ev) {
      ev.preventDefault();
      window.location.assign(window.location.pathname + "#message-" + data.id);
      window.location.reload();
    });
    // A second message replaces the banner's link: one who was on it stays on the new one.
    window.kb.keepFocus(banner, function () {
      banner.textContent = "";
      banner.appendChild(document.createTextNode(
        "Nouveau message de " + (data.auteur || "quelqu'un") + " dans ce ticket. "));
      banner.appendChild(link);
      banner.hidden = false;
    }, function () { return link; });
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

/* Canned replies: filtered as the agent types, inserted where the cursor is in the reply. */
(function () {
  "use strict";
  var picker = document.querySelector("[data-canned-picker]");
  var reply = document.querySelector("textarea[data-reply]");
  if (!picker || !reply) return;
  var form = reply.form;
  var filter = picker.querySelector("[data-canned-filter]");
  var statusNode = picker.querySelector("[data-canned-status]");
  var items = Array.prototype.slice.call(picker.querySelectorAll("[data-canned-item]"));

  function fold(text) {
    return text.toLowerCase().normalize("NFD").replace(/[\u0300-\u036f]/g, "");
  }

  // Without JavaScript they are links to the page with the reply filled in; here they insert
  // it in place, so they are buttons: named so, and pressed with Space as with Enter.
  picker.querySelectorAll("[data-canned-insert]").forEach(function (link) {
    link.setAttribute("role", "button");
    link.addEventListener("keydown", function (e) {
      if (e.key === " ") { e.preventDefault(); link.click(); }
    });
  });

  picker.addEventListener("click", function (e) {
    var link = e.target.closest("[data-canned-insert]");
    if (!link) return;
    e.preventDefault();
    var text = link.getAttribute("data-canned-insert");
    var start = reply.selectionStart || reply.value.length, end = reply.selectionEnd || start;
    var before = reply.value.slice(0, start), after = reply.value.slice(end);
    var glue = before && !/\n$/.test(before) ? "\n" : "";
    reply.value = before + glue + text + "\n" + after;
    reply.dispatchEvent(new Event("input", { bubbles: true }));  // kept if the page reloads
    reply.focus();
    var caret = (before + glue + text + "\n").length;
    reply.setSelectionRange(caret, caret);
    var used = document.createElement("input");
    used.type = "hidden";
    used.name = picker.dataset.cannedField;
    used.value = link.getAttribute("data-canned");
    form.appendChild(used);
    statusNode.textContent = "Réponse type insérée dans le message : relisez-la avant d'envoyer.";
  });

  if (filter && items.length) {
    filter.addEventListener("input", function () {
      var words = fold(filter.value).split(/\s+/).filter(Boolean);
      var shown = 0;
      items.forEach(function (item) {
        var haystack = fold(item.getAttribute("data-search"));
        var match = words.every(function (w) { return haystack.indexOf(w) !== -1; });
        item.hidden = !match;
        if (match) shown += 1;
      });
      statusNode.textContent = shown + " réponse(s) type(s).";
    });
  }
})();
