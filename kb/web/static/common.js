/* kb — helpers shared by kb.js and uploads.js (loaded first, as window.kb). */
(function () {
  "use strict";

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text) node.textContent = text;
    return node;
  }

  /* '12 Mo', '1,5 Go': French units, decimal comma, as the server writes them. */
  function size(bytes) {
    var units = ["octets", "Ko", "Mo", "Go", "To"], i = 0;
    while (bytes >= 1024 && i < units.length - 1) { bytes /= 1024; i++; }
    return (i ? bytes.toFixed(1).replace(".", ",").replace(",0", "") : Math.round(bytes)) + " " + units[i];
  }

  function duration(seconds) {
    if (!isFinite(seconds) || seconds < 0) return "";
    if (seconds < 60) return Math.max(1, Math.round(seconds)) + " s";
    if (seconds < 3600) return Math.round(seconds / 60) + " min";
    var h = Math.floor(seconds / 3600);
    return h + " h " + Math.round((seconds - h * 3600) / 60) + " min";
  }

  /* Articles from /api/suggest while `input` is typed: debounced, the older request aborted,
     and `show(query, suggestions)` called only if the text has not changed meanwhile. */
  function suggest(input, options, show) {
    var timer = null, controller = null, last = null;
    var minLength = options.minLength || 2;
    function run() {
      var query = input.value.trim();
      if (query.length < minLength) { last = null; show(query, null); return; }
      if (query === last) return;
      last = query;
      if (controller) controller.abort();   // the answer to an older query is no longer wanted
      controller = new AbortController();
      var url = options.url + "?q=" + encodeURIComponent(query) + (options.limit ? "&limit=" + options.limit : "");
      fetch(url, { headers: { Accept: "application/json" }, signal: controller.signal })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) {
          if (data && input.value.trim() === query) show(query, data.suggestions);
        })
        .catch(function () { /* aborted or offline: the form still submits */ });
    }
    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(run, options.delay || 150);
    });
    return { forget: function () { last = null; } };
  }

  /* A form's errors, field by field, shown as the server shows them: the field marked
     aria-invalid, its message before it and named by aria-describedby, a summary of links
     above the form, and the focus on that summary. `fields` maps field ids to messages;
     `general` is a message about the whole form. */
  function showErrors(form, fields, general) {
    var summary = form.previousElementSibling;
    if (!summary || !summary.hasAttribute("data-error-summary")) {  // a form without one yet
      summary = el("div", { "class": "error-summary", id: "erreurs", role: "alert", tabindex: "-1",
                            "data-error-summary": "", "aria-labelledby": "erreurs-titre" });
      summary.appendChild(el("h2", { "class": "error-summary__title", id: "erreurs-titre" },
                             "Le formulaire n'est pas encore envoyé"));
      summary.appendChild(el("ul", { "class": "error-summary__list" }));
      form.parentNode.insertBefore(summary, form);
    }
    clearErrors(form);
    var list = summary.querySelector("ul");
    list.textContent = "";
    if (general && !Object.keys(fields || {}).length) list.appendChild(el("li", {}, general));
    Object.keys(fields || {}).forEach(function (name) {
      var field = document.getElementById(name);
      var item = el("li");
      if (field) {
        var link = el("a", { href: "#" + name }, fields[name]);
        link.addEventListener("click", function (e) { e.preventDefault(); field.focus(); });
        item.appendChild(link);
        var message = el("p", { "class": "field__error", id: name + "-erreur", "data-script-error": "" });
        message.appendChild(el("span", { "class": "visually-hidden" }, "Erreur : "));
        message.appendChild(document.createTextNode(fields[name]));
        field.parentNode.insertBefore(message, field);
        field.setAttribute("aria-invalid", "true");
        var described = (field.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
        field.setAttribute("data-described", described.join(" "));
        field.setAttribute("aria-describedby", [name + "-erreur"].concat(described).join(" "));
      } else {
        item.textContent = fields[name];
      }
      list.appendChild(item);
    });
    summary.hidden = false;
    // As the server's page does: the title says it first, for those who read it first.
    if (document.title.indexOf("Erreur — ") !== 0) document.title = "Erreur — " + document.title;
    summary.focus();
  }

  /* Back to the form as it was: what the server marked goes too, since it is now stale. */
  function clearErrors(form) {
    var summary = form.previousElementSibling;
    if (summary && summary.hasAttribute("data-error-summary")) summary.hidden = true;
    document.title = document.title.replace(/^Erreur — /, "");
    form.querySelectorAll(".field__error").forEach(function (node) { node.remove(); });
    form.querySelectorAll("[aria-invalid]").forEach(function (field) {
      field.removeAttribute("aria-invalid");
      var described = field.hasAttribute("data-described")
        ? field.getAttribute("data-described")
        : (field.getAttribute("aria-describedby") || "").split(" ")
            .filter(function (id) { return id !== field.id + "-erreur"; }).join(" ");
      field.removeAttribute("data-described");
      if (described) field.setAttribute("aria-describedby", described); else field.removeAttribute("aria-describedby");
    });
  }

  /* Runs `change` (which hides or removes controls); if the focus was inside `container`,
     it goes to `next()` afterwards: never left on <body>. */
  function keepFocus(container, change, next) {
    var active = document.activeElement;
    var had = active && active !== document.body && (active === container || container.contains(active));
    change();
    var still = document.activeElement === active && document.body.contains(active) &&
                active.offsetParent !== null;
    if (!had || still) return;
    var target = next();
    if (!target) return;
    if (!/^(A|BUTTON|INPUT|SELECT|TEXTAREA)$/.test(target.tagName) && !target.hasAttribute("tabindex")) {
      target.setAttribute("tabindex", "-1");
    }
    target.focus();
  }

  window.kb = { el: el, size: size, duration: duration, suggest: suggest,
                showErrors: showErrors, clearErrors: clearErrors, keepFocus: keepFocus };
})();
