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

  /* Articles suggested while the ticket's subject is typed; they open in a new tab, so
     nothing typed in the form is lost. */
  function enhanceSubject(input) {
    var box = input.parentNode.querySelector("[data-suggestions]");
    var list = box && box.querySelector("ul");
    var statusNode = input.parentNode.querySelector("[data-suggestions-status]");
    if (!list) return;
    var timer = null, controller = null;
    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        var query = input.value.trim();
        if (query.length < 3) { box.hidden = true; return; }
        if (controller) controller.abort();
        controller = new AbortController();
        fetch(input.dataset.suggest + "?q=" + encodeURIComponent(query) + "&limit=5", {
          headers: { Accept: "application/json" }, signal: controller.signal
        }).then(function (r) { return r.ok ? r.json() : null; })
          .then(function (data) {
            if (!data || input.value.trim() !== query) return;
            list.textContent = "";
            data.suggestions.forEach(function (s) {
              var li = el("li");
              var a = el("a", { href: s.url + "?depuis=ticket", target: "_blank", rel: "noopener" }, s.title);
              a.appendChild(el("span", { "class": "new-tab", "aria-hidden": "true" }, " ↗"));
              a.appendChild(el("span", { "class": "visually-hidden" }, " (nouvel onglet)"));
              li.appendChild(a);
              list.appendChild(li);
            });
            box.hidden = data.suggestions.length === 0;
            if (statusNode) {
              statusNode.textContent = data.suggestions.length
                ? data.suggestions.length + " article(s) répondent peut-être à votre question, sous le champ Objet."
                : "";
            }
          })
          .catch(function () {});
      }, 300);
    });
  }

  function duration(seconds) {
    if (!isFinite(seconds)) return "";
    if (seconds < 60) return Math.max(1, Math.round(seconds)) + " s";
    if (seconds < 3600) return Math.round(seconds / 60) + " min";
    var h = Math.floor(seconds / 3600);
    return h + " h " + Math.round((seconds - h * 3600) / 60) + " min";
  }

  function size(bytes) {
    var units = ["octets", "Ko", "Mo", "Go", "To"], i = 0;
    while (bytes >= 1024 && i < units.length - 1) { bytes /= 1024; i++; }
    return (i ? bytes.toFixed(1).replace(".", ",").replace(",0", "") : bytes) + " " + units[i];
  }

  /* Sending a ticket or a reply: checked against the limit before sending, a progress bar
     with the percentage and the time left, and on failure the form stays as typed. */
  function enhanceUpload(form) {
    var progress = form.querySelector("[data-progress]");
    var bar = progress.querySelector("progress");
    var text = progress.querySelector("[data-progress-text]");
    var errorNode = form.querySelector("[data-upload-error]");
    var button = form.querySelector("button[type=submit]");
    var max = Number(form.dataset.maxBytes);

    function fail(message) {
      progress.hidden = true;
      errorNode.textContent = message;
      errorNode.hidden = false;
      button.disabled = false;
    }

    form.addEventListener("submit", function (e) {
      if (!window.XMLHttpRequest || !window.FormData) return;
      e.preventDefault();
      errorNode.hidden = true;
      var total = 0;
      form.querySelectorAll("input[type=file]").forEach(function (input) {
        Array.prototype.forEach.call(input.files, function (f) { total += f.size; });
      });
      if (total > max) {
        fail("Les pièces jointes font " + size(total) + " : c'est plus que les " + form.dataset.maxWords +
             " autorisés. Retirez ou compressez un fichier ; votre message est conservé.");
        return;
      }
      var xhr = new XMLHttpRequest();
      var started = Date.now();
      xhr.open("POST", form.action);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.upload.addEventListener("progress", function (event) {
        if (!event.lengthComputable) return;
        var percent = Math.floor(event.loaded * 100 / event.total);
        var elapsed = (Date.now() - started) / 1000;
        var left = event.loaded ? elapsed * (event.total - event.loaded) / event.loaded : Infinity;
        bar.value = percent;
        text.textContent = percent + " % envoyés (" + size(event.loaded) + " sur " + size(event.total) + ")" +
          (percent < 100 && elapsed > 1 ? ", environ " + duration(left) + " restantes" : "");
      });
      xhr.addEventListener("load", function () {
        var data = null;
        try { data = JSON.parse(xhr.responseText); } catch (err) { data = null; }
        // A route that answers the form with a redirect (303) has accepted it: the browser
        // followed it to an HTML page. Go there, as the plain form would have; never offer
        // to send again what was already received.
        var followed = xhr.responseURL && xhr.responseURL !== new URL(form.action, window.location.href).href;
        if (xhr.status >= 200 && xhr.status < 300 && data && data.url) {
          text.textContent = "Envoyé.";
          window.location.assign(data.url);
        } else if (xhr.status >= 200 && xhr.status < 300 && !data && followed) {
          text.textContent = "Envoyé.";
          window.location.assign(xhr.responseURL);
        } else {
          fail(data && data.error ? data.error.message : "L'envoi a échoué. Réessayez : votre message est conservé.");
        }
      });
      xhr.addEventListener("error", function () {
        fail("La connexion a été interrompue pendant l'envoi. Réessayez : votre message est conservé.");
      });
      button.disabled = true;
      progress.hidden = false;
      bar.value = 0;
      text.textContent = "0 % envoyé";
      xhr.send(new FormData(form));
    });
  }

  /* Support: search an article from the reply box and insert a link to its stable address. */
  function enhancePicker(form) {
    var input = form.querySelector("[data-picker-input]");
    var results = form.querySelector("[data-picker-results]");
    var statusNode = form.querySelector("[data-picker-status]");
    var reply = document.querySelector("textarea[data-reply]");
    if (!input || !results || !reply) return;
    var timer = null, controller = null;

    function insert(text) {
      var start = reply.selectionStart || reply.value.length, end = reply.selectionEnd || start;
      var before = reply.value.slice(0, start), after = reply.value.slice(end);
      var glue = before && !/\s$/.test(before) ? "\n" : "";
      reply.value = before + glue + text + "\n" + after;
      reply.focus();
      var caret = (before + glue + text + "\n").length;
      reply.setSelectionRange(caret, caret);
      statusNode.textContent = "Lien inséré dans le message.";
    }

    results.addEventListener("click", function (e) {
      var button = e.target.closest("[data-insert]");
      if (button) insert(button.getAttribute("data-insert"));
    });
    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        var query = input.value.trim();
        if (query.length < 2) return;
        if (controller) controller.abort();
        controller = new AbortController();
        fetch("/api/suggest?q=" + encodeURIComponent(query), {
          headers: { Accept: "application/json" }, signal: controller.signal
        }).then(function (r) { return r.ok ? r.json() : null; })
          .then(function (data) {
            if (!data || input.value.trim() !== query) return;
            results.textContent = "";
            data.suggestions.forEach(function (s) {
              var li = el("li");
              var url = window.location.origin + s.url;
              var button = el("button", { type: "button", "class": "button button--link", "data-insert": s.title + " : " + url },
                              "Insérer « " + s.title + " »");
              li.appendChild(button);
              li.appendChild(document.createTextNode(" "));
              li.appendChild(el("code", {}, url));
              results.appendChild(li);
            });
            statusNode.textContent = data.suggestions.length + " article(s) trouvé(s).";
          })
          .catch(function () {});
      }, 200);
    });
  }

  /* kb serve --reload: the page follows the content as the editor writes it. */
  function liveReload(url) {
    if (!window.EventSource) return;
    var boot = null;
    var source = new EventSource(url);
    source.addEventListener("hello", function (e) {
      if (boot && boot !== e.data) window.location.reload();  // the server restarted
      boot = e.data;
    });
    source.onmessage = function (e) { if (e.data === "reload") window.location.reload(); };
  }

  if (document.body.dataset.liveReload) liveReload(document.body.dataset.liveReload);
  document.querySelectorAll("form[data-article-picker]").forEach(enhancePicker);
  document.querySelectorAll("form[role=search][data-suggest]").forEach(enhanceSearch);
  document.querySelectorAll("form[data-vote]").forEach(enhanceVote);
  document.querySelectorAll("input[data-suggest]").forEach(enhanceSubject);
  document.querySelectorAll("form[data-upload]").forEach(enhanceUpload);
  enhanceAnchors();
})();
