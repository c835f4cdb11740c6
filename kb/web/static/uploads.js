/* kb — resumable attachments (tus). Without this file, or without JavaScript, the plain
   multipart form still works. With it, a large file starts sending as soon as it is chosen,
   in the background; a dropped connection, a reload or a closed browser resumes where it
   stopped once the same file (name, size, date) is chosen again; what was typed is kept
   meanwhile. A file over the limit stays in the form, which refuses it before sending. */
(function () {
  "use strict";
  if (!window.kb || !window.tus || !window.tus.isSupported || !window.localStorage) return;

  var CHUNK = 8 * 1024 * 1024;  // a resume sends at most one chunk twice
  // Smaller files go with the form itself, in seconds; larger ones are worth resuming.
  var RESUMABLE_FROM = 8 * 1024 * 1024;

  var el = window.kb.el, size = window.kb.size, duration = window.kb.duration;

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
    var announce = form.querySelector("[data-upload-announce]");
    var summary = form.querySelector("[data-resumable-summary]");
    var button = form.querySelector("button[type=submit]");
    if (!input || !list) return;
    var max = Number(form.dataset.maxBytes);
    var pending = 0;
    var forget = keepTyping(form);

    /* The button stays focusable and in the Tab order while files are on their way
       (aria-disabled, not disabled); the waiting notice is a status message. */
    function update() {
      if (pending > 0) {
        button.setAttribute("aria-disabled", "true");
        waiting.textContent = "Le bouton s'activera quand toutes les pièces jointes seront envoyées (" +
          pending + (pending > 1 ? " envois en cours)." : " envoi en cours).");
      } else {
        button.removeAttribute("aria-disabled");
        if (waiting.textContent) waiting.textContent = list.children.length ? "Pièces jointes envoyées : vous pouvez envoyer." : "";
      }
      // The file input is emptied of the files that travel on their own: say where they are.
      var rows = list.children.length;
      summary.textContent = rows ? rows + (rows > 1 ? " fichiers joints, envoyés" : " fichier joint, envoyé") +
        " à part : voir la liste ci-dessous." : "";
    }

    function add(file) {
      var row = el("li", { "class": "resumable__item" });
      var name = el("p", { "class": "resumable__name" }, file.name + " (" + size(file.size) + ")");
      var bar = el("progress", { max: "100", value: "0", "aria-label": "Envoi de " + file.name });
      var text = el("p", { "class": "resumable__text" }, "Préparation…");
      var controls = el("p", { "class": "resumable__controls" });
      // Visible words first, then the file: the accessible name contains the visible label.
      function control(label, rest, hidden) {
        var button = el("button", { type: "button", "class": "button button--link" }, label);
        button.appendChild(el("span", { "class": "visually-hidden" }, rest + " « " + file.name + " »"));
        if (hidden) button.hidden = true;
        controls.appendChild(button);
        return button;
      }
      var pause = control("Pause", " de l'envoi de"), resume = control("Reprendre", " l'envoi de", true);
      var cancel = control("Annuler", " l'envoi de");
      row.appendChild(name); row.appendChild(bar); row.appendChild(text); row.appendChild(controls);
      list.appendChild(row);

      pending += 1;
      update();
      var hidden = null, done = false, started = Date.now(), startOffset = null, step = -1;
      function say(message) { if (announce) announce.textContent = message; }
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
          if (Math.floor(percent / 10) !== step) {  // announced every 10 %, not ten times a second
            step = Math.floor(percent / 10);
            say(file.name + " : " + step * 10 + " %");
          }
        },
        onSuccess: function () {
          done = true;
          bar.value = 100;
          text.textContent = "Envoyé : " + size(file.size) + ".";
          say(file.name + " : envoyé.");
          keepFocus(row, function () { pause.hidden = true; resume.hidden = true; }, function () { return cancel; });
          cancel.firstChild.textContent = "Retirer";
          cancel.lastChild.textContent = " la pièce jointe « " + file.name + " »";
          hidden = el("input", { type: "hidden", name: "televersement",
                                 value: upload.url.split("/").pop() });
          form.appendChild(hidden);
          pending -= 1;
          update();
        },
        onError: function (error) {
          var message = "L'envoi s'est interrompu.";
          var response = error && error.originalResponse;
          if (response) {
            try { message = JSON.parse(response.getBody()).error.message; } catch (e) { /* keep */ }
          }
          text.textContent = message + " Cliquez sur « Reprendre » pour continuer.";
          say(file.name + " : " + text.textContent);
          keepFocus(row, function () { pause.hidden = true; resume.hidden = false; }, function () { return resume; });
        }
      });
      pause.addEventListener("click", function () {
        upload.abort();
        text.textContent = "En pause à " + bar.value + " %.";
        say(file.name + " : " + text.textContent);
        keepFocus(row, function () { pause.hidden = true; resume.hidden = false; }, function () { return resume; });
      });
      resume.addEventListener("click", function () {
        startOffset = null;
        upload.start();
        say(file.name + " : reprise de l'envoi.");
        keepFocus(row, function () { resume.hidden = true; pause.hidden = false; }, function () { return pause; });
      });
      cancel.addEventListener("click", function () {
        upload.abort(true).catch(function () {});
        if (hidden) hidden.remove();
        if (!done) pending -= 1;
        // The focus goes to the next file's button, else the previous one's, else the input.
        var sibling = row.nextElementSibling || row.previousElementSibling;
        keepFocus(row, function () { row.remove(); }, function () {
          return sibling ? sibling.querySelector(".resumable__controls button:last-child") : input;
        });
        say(file.name + (done ? " retiré." : " : envoi annulé."));
        update();
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

    var keepFocus = window.kb.keepFocus;

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
    // Capture, so that this runs before the sending script's own handler.
    form.addEventListener("submit", function (e) {
      if (pending > 0) {
        e.preventDefault();
        e.stopImmediatePropagation();
        waiting.textContent = "";  // said again, so that it is announced again
        window.setTimeout(update, 50);
        return;
      }
      forget();
    }, true);
  }

  document.querySelectorAll("form[data-resumable]").forEach(enhance);
})();
