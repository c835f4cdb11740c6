/* kb — progressive enhancement only: every feature works without this file. */
(function () {
  "use strict";

  var DEBOUNCE_MS = 150;

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text) node.textContent = text;
    return node;
  }

  /* Search as you type: an ARIA 1.2 combobox over /api/suggest. */
  function enhanceSearch(form, n) {
    var input = form.querySelector("input[type=search]");
    if (!input) return;
    var listId = "suggestions-" + n;
    var list = el("ul", { id: listId, role: "listbox", "class": "suggestions", "aria-label": "Suggestions d'articles" });
    list.hidden = true;
    var status = el("p", { "class": "visually-hidden", role: "status", "aria-live": "polite" });
    form.appendChild(list);
    form.appendChild(status);
    input.setAttribute("role", "combobox");
    input.setAttribute("aria-autocomplete", "list");
    input.setAttribute("aria-expanded", "false");
    input.setAttribute("aria-controls", listId);

    var timer = null, controller = null, active = -1, items = [], lastQuery = null;

    function close() {
      list.hidden = true;
      input.setAttribute("aria-expanded", "false");
      input.removeAttribute("aria-activedescendant");
      active = -1;
    }

    function select(index) {
      var options = list.querySelectorAll("[role=option]");
      options.forEach(function (o, i) { o.setAttribute("aria-selected", i === index ? "true" : "false"); });
      active = index;
      if (index >= 0 && options[index]) {
        input.setAttribute("aria-activedescendant", options[index].id);
        options[index].scrollIntoView({ block: "nearest" });
      } else {
        input.removeAttribute("aria-activedescendant");
      }
    }

    function open(url) { window.location.assign(url); }

    function show(query, suggestions) {
      list.textContent = "";
      items = suggestions.map(function (s) { return s.url; });
      items.push(form.action + "?q=" + encodeURIComponent(query));
      // Options hold plain text: a link inside an option would be a control nested in a control.
      suggestions.forEach(function (s, i) {
        list.appendChild(el("li", { id: listId + "-" + i, role: "option", "aria-selected": "false" }, s.title));
      });
      list.appendChild(el("li", { id: listId + "-all", role: "option", "aria-selected": "false", "class": "suggestions__all" },
        "Voir tous les résultats pour « " + query + " »"));
      list.hidden = false;
      input.setAttribute("aria-expanded", "true");
      active = -1;
      status.textContent = suggestions.length === 0
        ? "Aucune suggestion. Appuyez sur Entrée pour lancer la recherche."
        : suggestions.length + (suggestions.length > 1 ? " suggestions" : " suggestion") + " : flèches haut et bas pour les parcourir.";
    }

    function fetchSuggestions() {
      var query = input.value;
      if (query.trim().length < 2) { close(); status.textContent = ""; lastQuery = null; return; }
      if (query === lastQuery) return;
      lastQuery = query;
      if (controller) controller.abort();   // the answer to an older query is no longer wanted
      controller = new AbortController();
      fetch(form.dataset.suggest + "?q=" + encodeURIComponent(query), {
        headers: { Accept: "application/json" }, signal: controller.signal
      }).then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) {
          if (data && input.value === query && document.activeElement === input) show(query, data.suggestions);
        })
        .catch(function () { /* aborted or offline: the form still submits */ });
    }

    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(fetchSuggestions, DEBOUNCE_MS);
    });
    input.addEventListener("keydown", function (e) {
      var count = list.querySelectorAll("[role=option]").length;
      if (e.key === "ArrowDown" && count) {
        e.preventDefault();
        if (list.hidden) { list.hidden = false; input.setAttribute("aria-expanded", "true"); }
        select((active + 1) % count);
      } else if (e.key === "ArrowUp" && count && !list.hidden) {
        e.preventDefault();
        select(active <= 0 ? count - 1 : active - 1);
      } else if (e.key === "Enter" && active >= 0 && !list.hidden) {
        e.preventDefault();
        open(items[active]);
      } else if (e.key === "Escape" && !list.hidden) {
        e.preventDefault();
        close();
      }
    });
    input.addEventListener("blur", function () { setTimeout(close, 150); });
    list.addEventListener("mousedown", function (e) { e.preventDefault(); });
    list.addEventListener("click", function (e) {
      var option = e.target.closest("[role=option]");
      if (!option) return;
      e.preventDefault();
      var options = Array.prototype.slice.call(list.querySelectorAll("[role=option]"));
      open(items[options.indexOf(option)]);
    });
  }

  /* "Cet article vous a-t-il été utile ?" answered without leaving the page. */
  function enhanceVote(form) {
    var statusNode = form.querySelector("[data-vote-status]");
    form.addEventListener("submit", function (e) {
      var button = e.submitter;
      if (!button || !window.fetch) return;
      e.preventDefault();
      var body = new FormData(form);
      body.append(button.name, button.value);
      fetch(form.action, { method: "POST", body: body, headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : Promise.reject(r); })
        .then(function (data) {
          var fieldset = form.querySelector("fieldset");
          var hadFocus = fieldset.contains(document.activeElement);
          fieldset.hidden = true;
          statusNode.textContent = data.message;
          if (hadFocus) {  // the button that had the focus is gone: keep the user's place
            statusNode.setAttribute("tabindex", "-1");
            statusNode.focus();
          }
        })
        .catch(function () { form.submit(); });
    });
  }

  /* The "#" after a heading copies the section's address, for support to share. */
  function enhanceAnchors() {
    var statusNode = document.querySelector("[data-copy-status]");
    document.querySelectorAll(".heading-anchor").forEach(function (a) {
      a.addEventListener("click", function () {
        if (!navigator.clipboard) return;
        var url = window.location.origin + window.location.pathname + a.getAttribute("href");
        navigator.clipboard.writeText(url).then(function () {
          if (statusNode) statusNode.textContent = "Lien vers la section copié.";
        }, function () {});
      });
    });
  }

  document.querySelectorAll("form[role=search][data-suggest]").forEach(enhanceSearch);
  document.querySelectorAll("form[data-vote]").forEach(enhanceVote);
  enhanceAnchors();
})();
