/* Kiosk and lookup pages: one question per screen, checks on the page (GB 11643 ID numbers, phones), and the
   idle timeout that clears a shared kiosk. Everything works without this file too: the server checks again. */
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  // ── GB 11643 ─────────────────────────────────────────────────────────────────────────────────────────
  var WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
  var CHECK = "10X98765432";
  function idProblem(raw) {
    var v = raw.trim().toUpperCase();
    if (v.length !== 18) return "wrong-length";
    if (!/^\d{17}[\dX]$/.test(v)) return "bad-characters";
    var y = +v.slice(6, 10), m = +v.slice(10, 12), d = +v.slice(12, 14);
    var born = new Date(Date.UTC(y, m - 1, d));
    if (born.getUTCFullYear() !== y || born.getUTCMonth() !== m - 1 || born.getUTCDate() !== d ||
        y < 1900 || born.getTime() > Date.now()) return "bad-birth-date";
    var sum = 0;
    for (var i = 0; i < 17; i++) sum += (+v[i]) * WEIGHTS[i];
    return CHECK[sum % 11] === v[17] ? null : "bad-checksum";
  }
  // ── GB 32100: 统一社会信用代码 ─────────────────────────────────────────────────────────────────────────
  var USCC_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY";
  var USCC_WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];
  function usccProblem(raw) {
    var v = raw.replace(/\s/g, "").toUpperCase();
    if (v.length !== 18) return "wrong-length";
    for (var i = 0; i < 18; i++) if (USCC_CHARSET.indexOf(v[i]) < 0) return "bad-characters";
    if (!/^\d{6}$/.test(v.slice(2, 8))) return "bad-characters";
    var sum = 0;
    for (var j = 0; j < 17; j++) sum += USCC_CHARSET.indexOf(v[j]) * USCC_WEIGHTS[j];
    return USCC_CHARSET[(31 - sum % 31) % 31] === v[17] ? null : "bad-checksum";
  }
  var PHONE = /^(1[3-9]\d{9}|0\d{2,3}-?\d{7,8})$/;
  window.sanjiKiosk = { idProblem: idProblem, usccProblem: usccProblem };

  function showError(field, message) {
    var box = document.getElementById(field + "-error");
    var input = document.getElementById(field) || document.querySelector("[aria-describedby='" + field + "-error']");
    if (box) {
      box.textContent = message || "";
      box.hidden = !message;
      if (message) box.setAttribute("role", "alert"); else box.removeAttribute("role");
    }
    if (input) {
      if (message) input.setAttribute("aria-invalid", "true"); else input.removeAttribute("aria-invalid");
      var holder = input.closest(".field, fieldset.material");
      if (holder) holder.classList.toggle("has-error", !!message);
    }
    return !message;
  }

  // ── the steps ────────────────────────────────────────────────────────────────────────────────────────
  var form = document.getElementById("apply");
  if (form) {
    var steps = Array.prototype.slice.call(form.querySelectorAll("fieldset.step"));
    var current = 0;
    function deferredNames() {
      return Array.prototype.slice.call(form.querySelectorAll("input[type=radio][value=deferred]:checked"))
        .map(function (r) { return r.closest("fieldset.material").querySelector("legend").firstChild.textContent.trim(); });
    }
    function agentActs() { return !!(form.role && form.role.value === "agent"); }
    function applicable(step) {
      return (!step.hasAttribute("data-only-when-deferred") || deferredNames().length > 0) &&
        (!step.hasAttribute("data-only-when-agent") || agentActs());
    }
    function visibleSteps() { return steps.filter(applicable); }
    function show(index) {
      current = index;
      steps.forEach(function (s, i) { s.classList.toggle("current", i === index); });
      var shown = visibleSteps();
      var counter = document.getElementById("step-count");
      if (counter) counter.textContent = "第 " + (shown.indexOf(steps[index]) + 1) + " 步，共 " + shown.length + " 步";
      var list = document.getElementById("deferred-list");
      if (list) list.textContent = "容缺后补的材料：" + deferredNames().join("、");
      if (steps[index].getAttribute("data-step") === "confirm") fillSummary();
      var focus = steps[index].querySelector("[aria-invalid=true], input:not([type=hidden]), button");
      if (focus) focus.focus();
      window.scrollTo(0, 0);
    }
    function mask(value, keepStart, keepEnd) {
      if (value.length <= keepStart + keepEnd) return value.replace(/./g, "*");
      return value.slice(0, keepStart) + value.slice(keepStart, value.length - keepEnd).replace(/./g, "*") +
        value.slice(value.length - keepEnd);
    }
    function fillSummary() {
      var dl = document.getElementById("summary");
      if (!dl) return;
      var rows = [["姓名", mask(form.name.value.trim(), 1, 0)], ["身份证号码", mask(form.id_number.value.trim().toUpperCase(), 4, 2)],
                  ["联系电话", mask(form.phone.value.trim(), 3, 4)], ["容缺后补", deferredNames().join("、") || "无"]];
      if (form.uscc) {
        rows.unshift(["企业名称", form.organisation_name.value.trim()],
                     ["统一社会信用代码", form.uscc.value.replace(/\s/g, "").toUpperCase()],
                     ["办理人身份", agentActs() ? "委托代理人（已带来授权委托书）" : "法定代表人"]);
      }
      dl.textContent = "";
      rows.forEach(function (row) {
        var dt = document.createElement("dt"); dt.textContent = row[0];
        var dd = document.createElement("dd"); dd.textContent = row[1];
        dl.appendChild(dt); dl.appendChild(dd);
      });
    }
    function check(step) {
      var ok = true;
      var name = step.getAttribute("data-step");
      if (name === "materials") {
        step.querySelectorAll("fieldset.material").forEach(function (group) {
          var field = group.getAttribute("aria-describedby").replace(/-error$/, "");
          var chosen = group.querySelector("input[type=radio]:checked");
          var label = group.querySelector("legend").firstChild.textContent.trim();
          var msg = chosen ? "" : (group.getAttribute("data-deferrable") === "true"
            ? "请确认已带来" + label + "，或选择容缺后补。" : "请确认已带来" + label + "（须当场提供，不能容缺）。");
          ok = showError(field, msg) && ok;
        });
      } else if (name === "organisation_name") {
        ok = showError("organisation_name", form.organisation_name.value.trim() ? "" : form.organisation_name.getAttribute("data-msg-empty"));
      } else if (name === "uscc") {
        var code = form.uscc.value.trim();
        var wrong = code ? usccProblem(code) : "empty";
        ok = showError("uscc", wrong ? form.uscc.getAttribute("data-msg-" + wrong) : "");
      } else if (name === "role") {
        ok = showError("role", form.role.value ? "" : "请选择由法定代表人本人办理，还是由委托代理人办理。");
      } else if (name === "authorisation") {
        ok = showError("authorisation", form.authorisation.checked ? "" : "委托代理人办理须提交加盖企业公章、法定代表人签字的授权委托书，请确认已带来。");
      } else if (name === "commitment") {
        ok = showError("commitment", form.commitment.checked ? "" : "容缺受理须先阅读并同意《容缺受理承诺书》。");
      } else if (name === "name") {
        ok = showError("name", form.name.value.trim() ? "" : form.name.getAttribute("data-msg-empty"));
      } else if (name === "id_number") {
        var input = form.id_number;
        var value = input.value.trim();
        var problem = value ? idProblem(value) : "empty";
        ok = showError("id_number", problem ? input.getAttribute("data-msg-" + problem) : "");
      } else if (name === "phone") {
        var phone = form.phone.value.replace(/\s/g, "");
        ok = showError("phone", !phone ? form.phone.getAttribute("data-msg-empty")
          : (PHONE.test(phone) ? "" : form.phone.getAttribute("data-msg-invalid")));
      }
      return ok;
    }
    form.addEventListener("click", function (event) {
      var target = event.target.closest("[data-next], [data-back]");
      if (!target) return;
      event.preventDefault();
      if (target.hasAttribute("data-next")) {
        if (!check(steps[current])) { var bad = steps[current].querySelector("[aria-invalid=true] input, [aria-invalid=true]"); if (bad) bad.focus(); return; }
        var next = current + 1;
        while (next < steps.length && !applicable(steps[next])) next++;
        show(Math.min(next, steps.length - 1));
      } else {
        var back = current - 1;
        while (back > 0 && !applicable(steps[back])) back--;
        show(Math.max(back, 0));
      }
    });
    // An answer given clears the message about it.
    form.addEventListener("change", function (event) {
      var group = event.target.closest("fieldset.material");
      if (group) showError(group.getAttribute("aria-describedby").replace(/-error$/, ""), "");
      if (event.target.name === "commitment" && event.target.checked) showError("commitment", "");
      if (event.target.name === "authorisation" && event.target.checked) showError("authorisation", "");
    });
    form.addEventListener("input", function (event) {
      if (event.target.id && event.target.getAttribute("aria-invalid") === "true") showError(event.target.id, "");
    });
    form.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && event.target.tagName === "INPUT" && steps[current].getAttribute("data-step") !== "confirm") {
        event.preventDefault();
        var next = steps[current].querySelector("[data-next]");
        if (next) next.click();
      }
    });
    form.addEventListener("submit", function (event) {
      for (var i = 0; i < steps.length; i++) {
        if (applicable(steps[i]) && !check(steps[i])) { event.preventDefault(); show(i); return; }
      }
      var button = document.getElementById("submit");
      if (button) { button.disabled = true; button.textContent = "正在提交…"; }
    });
    var firstError = steps.findIndex(function (s) { return s.querySelector(".has-error, [aria-invalid=true]"); });
    show(firstError >= 0 ? firstError : 0);
  }

  // ── receipt: wait for routing, then done ─────────────────────────────────────────────────────────────
  var pending = document.querySelector("[data-pending=true]");
  if (pending) setTimeout(function () { location.replace(location.href); }, 2000);

  // ── idle timeout: clear the screen and everything personal ───────────────────────────────────────────
  var idleSeconds = parseInt(document.body.getAttribute("data-idle-seconds") || "0", 10);
  var resetForm = document.getElementById("kiosk-reset");
  function clearEverything() {
    document.querySelectorAll("form").forEach(function (f) { f.reset(); });
    document.querySelectorAll("input[type=text], input[type=tel], input[type=password]").forEach(function (i) { i.value = ""; });
    try { sessionStorage.clear(); localStorage.clear(); } catch (e) { /* storage may be disabled */ }
    var main = document.getElementById("main");
    if (main) main.textContent = "";
  }
  function leave() {
    var data = resetForm ? new FormData(resetForm) : null;
    clearEverything();
    if (!data) { location.replace("/kiosk"); return; }
    fetch("/kiosk/done", { method: "POST", body: data, credentials: "same-origin", redirect: "manual" })
      .catch(function () { return null; })
      .then(function () { location.replace("/kiosk"); });
  }
  document.querySelectorAll("form.done, #kiosk-reset").forEach(function (f) {
    f.addEventListener("submit", function (event) { event.preventDefault(); leave(); });
  });
  if (idleSeconds > 0 && resetForm) {
    var warning = document.getElementById("idle-warning");
    var count = document.getElementById("idle-count");
    var warnFor = Math.min(10, Math.max(1, Math.floor(idleSeconds / 3)));
    var timer = null, ticker = null, left = 0;
    function arm() {
      clearTimeout(timer); clearInterval(ticker);
      if (warning) warning.hidden = true;
      timer = setTimeout(warn, (idleSeconds - warnFor) * 1000);
    }
    function warn() {
      left = warnFor;
      if (count) count.textContent = String(left);
      if (warning) { warning.hidden = false; var stay = document.getElementById("idle-stay"); if (stay) stay.focus(); }
      ticker = setInterval(function () {
        left -= 1;
        if (count) count.textContent = String(Math.max(left, 0));
        if (left <= 0) { clearInterval(ticker); leave(); }
      }, 1000);
    }
    // A page that shows something of the resident's counts down at once; an untouched start screen waits for
    // the first touch (it has nothing to clear, and an unattended kiosk should not keep asking).
    ["pointerdown", "keydown", "touchstart", "input", "wheel"].forEach(function (name) {
      document.addEventListener(name, arm, { passive: true, capture: true });
    });
    var stayButton = document.getElementById("idle-stay");
    if (stayButton) stayButton.addEventListener("click", arm);
    if (document.querySelector("[data-personal=true]")) arm();
  }
}());
