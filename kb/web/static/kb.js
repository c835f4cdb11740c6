/* kb — progressive enhancement only: every feature works without this file. */
(function () {
  "use strict";

  if (!window.kb) return;
  var el = window.kb.el, size = window.kb.size, duration = window.kb.duration;

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

    var active = -1, items = [];

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

    window.kb.suggest(input, { url: form.dataset.suggest, delay: 150 }, function (query, suggestions) {
      if (suggestions === null) { close(); status.textContent = ""; return; }
      if (document.activeElement === input) show(query, suggestions);
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
    window.kb.suggest(input, { url: input.dataset.suggest, limit: 5, minLength: 3, delay: 300 }, function (query, suggestions) {
      if (suggestions === null) { box.hidden = true; return; }
      list.textContent = "";
      suggestions.forEach(function (s) {
        var li = el("li");
        var a = el("a", { href: s.url + "?depuis=ticket", target: "_blank", rel: "noopener" }, s.title);
        a.appendChild(el("span", { "class": "new-tab", "aria-hidden": "true" }, " ↗"));
        a.appendChild(el("span", { "class": "visually-hidden" }, " (nouvel onglet)"));
        li.appendChild(a);
        list.appendChild(li);
      });
      box.hidden = suggestions.length === 0;
      if (statusNode) {
        statusNode.textContent = suggestions.length
          ? suggestions.length + " article(s) répondent peut-être à votre question, sous le champ Objet."
          : "";
      }
    });
  }

  /* Sending a ticket or a reply: checked against the limit before sending, a progress bar
     with the percentage and the time left (announced every 10 %), and on failure the form
     stays as typed, its errors shown field by field as the server would show them. */
  function enhanceUpload(form) {
    var progress = form.querySelector("[data-progress]");
    var bar = progress.querySelector("progress");
    var text = progress.querySelector("[data-progress-text]");
    var announce = form.querySelector("[data-upload-announce]");
    var button = form.querySelector("button[type=submit]");
    var max = Number(form.dataset.maxBytes);
    var sending = false;

    function fail(fields, general) {
      sending = false;
      progress.hidden = true;
      button.removeAttribute("aria-disabled");
      announce.textContent = "";
      window.kb.showErrors(form, fields, general);
    }

    form.addEventListener("submit", function (e) {
      if (!window.XMLHttpRequest || !window.FormData) return;
      if (e.defaultPrevented) return;  // held back (attachments still on their way)
      e.preventDefault();
      if (sending) return;  // one sending at a time; the button keeps the focus meanwhile
      var total = 0;
      form.querySelectorAll("input[type=file]").forEach(function (input) {
        Array.prototype.forEach.call(input.files, function (f) { total += f.size; });
      });
      if (total > max) {
        fail({ fichiers: "Les pièces jointes font " + size(total) + " : c'est plus que les " + form.dataset.maxWords +
              " autorisés. Retirez ou compressez un fichier ; votre message est conservé." });
        return;
      }
      window.kb.clearErrors(form);
      var xhr = new XMLHttpRequest();
      var started = Date.now(), step = -1;
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
        if (Math.floor(percent / 10) !== step) {  // a screen reader hears steps, not a stream
          step = Math.floor(percent / 10);
          announce.textContent = "Envoi : " + step * 10 + " %";
        }
      });
      xhr.addEventListener("load", function () {
        var data = null;
        try { data = JSON.parse(xhr.responseText); } catch (err) { data = null; }
        // A route that answers the form with a redirect (303) has accepted it: the browser
        // followed it to an HTML page. Go there, as the plain form would have; never offer
        // to send again what was already received.
        var followed = xhr.responseURL && xhr.responseURL !== new URL(form.action, window.location.href).href;
        if (xhr.status >= 200 && xhr.status < 300 && data && data.url) {
          announce.textContent = text.textContent = "Envoyé.";
          window.location.assign(data.url);
        } else if (xhr.status >= 200 && xhr.status < 300 && !data && followed) {
          announce.textContent = text.textContent = "Envoyé.";
          window.location.assign(xhr.responseURL);
        } else if (data && data.error) {
          fail(data.error.fields, data.error.message);
        } else {
          fail(null, "L'envoi a échoué. Réessayez : votre message est conservé.");
        }
      });
      xhr.addEventListener("error", function () {
        fail(null, "La connexion a été interrompue pendant l'envoi. Réessayez : votre message est conservé.");
      });
      // Not `disabled`: a disabled button drops the focus to <body> and leaves the Tab order.
      sending = true;
      button.setAttribute("aria-disabled", "true");
      progress.hidden = false;
      bar.value = 0;
      text.textContent = "0 % envoyé";
      announce.textContent = "Envoi en cours.";
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
    window.kb.suggest(input, { url: form.dataset.pickerSuggest, delay: 200 }, function (query, suggestions) {
      if (suggestions === null) return;
      results.textContent = "";
      suggestions.forEach(function (s) {
        var li = el("li");
        var url = window.location.origin + s.url;
        li.appendChild(el("button", { type: "button", "class": "button button--link", "data-insert": s.title + " : " + url },
                          "Insérer « " + s.title + " »"));
        li.appendChild(document.createTextNode(" "));
        li.appendChild(el("code", {}, url));
        results.appendChild(li);
      });
      statusNode.textContent = suggestions.length + " article(s) trouvé(s).";
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
