/* kb — resumable attachments (tus). Without this file, or without JavaScript, the plain
   multipart form still works. With it, a large file starts sending as soon as it is chosen,
   in the background; a dropped connection, a reload or a closed browser resumes where it
   stopped once the same file (name, size, date) is chosen again; what was typed is kept
   meanwhile. A file over the limit stays in the form, which refuses it before sending. */
(function () {
  "use strict";
  if (!window.tus || !window.tus.isSupported || !window.localStorage) return;

  var CHUNK = 8 * 1024 * 1024;  // a resume sends at most one chunk twice
  // Smaller files go with the form itself, in seconds; larger ones are worth resuming.
  var RESUMABLE_FROM = 8 * 1024 * 1024;

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text) node.textContent = text;
    return node;
  }

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

  function csrf(form) {
    var field = form.querySelector("input[name=csrf]");
    return field ? field.value : "";
  }

  /* What was typed survives a reload or a closed browser, until the form is sent. */
  function keepTyping(form) {
    var key = "kb-saisie:" + window.location.pathname + ":" + form.getAttribute("action");
    var fields = form.querySelectorAll("textarea, input[type=text], select");
    var saved = {};
    try { saved = JSON.parse(window.localStorage.getItem(key) || "{}"); } catch (e) { saved = {}; }
    fields.forEach(function (field) {
      if (saved[field.name] && !field.value) field.value = saved[field.name];
      field.addEventListener("input", function () {
        var values = {};
        fields.forEach(function (f) { if (f.value) values[f.name] = f.value; });
        window.localStorage.setItem(key, JSON.stringify(values));
      });
    });
    return function forget() { window.localStorage.removeItem(key); };
  }

  function enhance(form) {
    var input = form.querySelector("input[type=file]");
    var list = form.querySelector("[data-resumable-list]");
    var waiting = form.querySelector("[data-resumable-wait]");
    var button = form.querySelector("button[type=submit]");
    if (!input || !list) return;
    var max = Number(form.dataset.maxBytes);
    var pending = 0;
    var forget = keepTyping(form);

    function update() {
      button.disabled = pending > 0;
      if (waiting) waiting.hidden = pending === 0;
    }

    function add(file) {
      var row = el("li", { "class": "resumable__item" });
      var name = el("p", { "class": "resumable__name" }, file.name + " (" + size(file.size) + ")");
      var bar = el("progress", { max: "100", value: "0", "aria-label": "Envoi de " + file.name });
      var text = el("p", { "class": "resumable__text", "aria-live": "polite" }, "Préparation…");
      var controls = el("p", { "class": "resumable__controls" });
      var pause = el("button", { type: "button", "class": "button button--link" }, "Pause");
      var resume = el("button", { type: "button", "class": "button button--link", hidden: "" }, "Reprendre");
      var cancel = el("button", { type: "button", "class": "button button--link" }, "Annuler");
      controls.appendChild(pause); controls.appendChild(resume); controls.appendChild(cancel);
      row.appendChild(name); row.appendChild(bar); row.appendChild(text); row.appendChild(controls);
      list.appendChild(row);

      pending += 1;
      update();
      var hidden = null, done = false, started = Date.now(), startOffset = null;
      var upload = new window.tus.Upload(file, {
        endpoint: form.dataset.resumable,
        chunkSize: CHUNK,
        retryDelays: [0, 1000, 3000, 5000, 10000, 20000],
        metadata: { filename: file.name, filetype: file.type || "application/octet-stream" },
        headers: { "X-CSRF-Token": csrf(form) },
        removeFingerprintOnSuccess: false,
        onProgress: function (sent, total) {
          if (startOffset === null) { startOffset = sent; started = Date.now(); }
          var percent = total ? Math.floor(sent * 100 / total) : 100;
          var elapsed = (Date.now() - started) / 1000;
          var speed = elapsed > 0 ? (sent - startOffset) / elapsed : 0;
          bar.value = percent;
          text.textContent = percent + " % (" + size(sent) + " sur " + size(total) + ")" +
            (speed > 0 && percent < 100 ? ", " + size(speed) + "/s, environ " +
             duration((total - sent) / speed) + " restantes" : "");
        },
        onSuccess: function () {
          done = true;
          bar.value = 100;
          text.textContent = "Envoyé : " + size(file.size) + ".";
          pause.hidden = true; resume.hidden = true;
          hidden = el("input", { type: "hidden", name: "televersement",
                                 value: upload.url.split("/").pop() });
          form.appendChild(hidden);
          pending -= 1;
          update();
        },
        onError: function (error) {
          var message = "L'envoi s'est interrompu";
          var response = error && error.originalResponse;
          if (response) {
            try { message = JSON.parse(response.getBody()).error.message; } catch (e) { /* keep */ }
          }
          text.textContent = message + " Cliquez sur « Reprendre » pour continuer.";
          pause.hidden = true; resume.hidden = false;
        }
      });
      pause.addEventListener("click", function () {
        upload.abort();
        text.textContent = "En pause à " + bar.value + " %.";
        pause.hidden = true; resume.hidden = false;
      });
      resume.addEventListener("click", function () {
        startOffset = null;
        upload.start();
        resume.hidden = true; pause.hidden = false;
      });
      cancel.addEventListener("click", function () {
        upload.abort(true).catch(function () {});
        if (hidden) hidden.remove();
        if (!done) { pending -= 1; update(); }
        row.remove();
      });
      // The same file chosen again (name, size, date) resumes where it stopped.
      upload.findPreviousUploads().then(function (previous) {
        if (previous.length) {
          upload.resumeFromPreviousUpload(previous[0]);
          text.textContent = "Reprise de l'envoi…";
        }
        upload.start();
      });
    }

    input.addEventListener("change", function () {
      var chosen = Array.prototype.slice.call(input.files);
      var large = chosen.filter(function (f) { return f.size >= RESUMABLE_FROM && f.size <= max; });
      if (!large.length || !window.DataTransfer) return;
      large.forEach(add);
      // The large files travel through tus; the others stay in the form.
      var rest = new window.DataTransfer();
      chosen.forEach(function (f) { if (large.indexOf(f) === -1) rest.items.add(f); });
      input.files = rest.files;
    });
    form.addEventListener("submit", function (e) {
      if (pending > 0) {
        e.preventDefault();
        if (waiting) waiting.hidden = false;
        return;
      }
      forget();
    });
  }

  document.querySelectorAll("form[data-resumable]").forEach(enhance);
})();
