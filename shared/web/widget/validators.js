// The web chat form's validators: plain JavaScript ports of the Rust ones the WhatsApp channel
// runs (`shared/src/survey/answer.rs`), for instant feedback in the browser. The server decides:
// it runs the Rust validators on every submission. Both are checked against the same test
// vectors, `shared/surveys/testdata/validators.json` (`tests/e2e/validators.test.mjs` here,
// `survey::web` tests in Rust). `pattern` questions are checked on the server only (regular
// expression dialects differ); countries are picked from a list, never parsed here.
//
// Each validator returns the normalised answer (a string, exactly what the server stores), or
// null when the input is not valid.
"use strict";

const PrechatValidators = (() => {
  const ALNUM = /^[\p{L}\p{N}]$/u;
  const bytes = (s) => new TextEncoder().encode(s).length;
  const chars = (s) => [...s];

  // `survey::text::normalise`: lower case, accents folded, edge punctuation and extra spaces gone.
  const EDGE = new Set([".", ",", "!", "?", "¡", "¿", ";", ":", '"', "'", "*", "_", "~"]);
  function normalise(input) {
    const folded = chars(input.toLowerCase().normalize("NFD").replace(/\p{M}/gu, "")).join("");
    const list = chars(folded);
    let a = 0;
    let b = list.length;
    while (a < b && (/\s/u.test(list[a]) || EDGE.has(list[a]))) a += 1;
    while (b > a && (/\s/u.test(list[b - 1]) || EDGE.has(list[b - 1]))) b -= 1;
    return list.slice(a, b).join("").split(/\s+/u).filter(Boolean).join(" ");
  }

  function email(input) {
    const s = input.trim();
    if (bytes(s) > 254 || /[\s\p{Cc}]/u.test(s)) return null;
    const at = s.lastIndexOf("@");
    if (at < 0) return null;
    const local = s.slice(0, at);
    const domain = s.slice(at + 1);
    if (!local || bytes(local) > 64 || local.includes("@")) return null;
    if (local.startsWith(".") || local.endsWith(".") || local.includes("..")) return null;
    const okLocal = chars(local).every((c) => ALNUM.test(c) || "!#$%&'*+/=?^_`{|}~.-".includes(c));
    const labels = domain.split(".");
    const okDomain = labels.length >= 2
      && labels.every((l) => l && bytes(l) <= 63 && !l.startsWith("-") && !l.endsWith("-")
        && chars(l).every((c) => ALNUM.test(c) || c === "-"))
      && (() => { const tld = labels[labels.length - 1]; return chars(tld).length >= 2 && /^\p{Alphabetic}+$/u.test(tld); })();
    return okLocal && okDomain ? `${local}@${domain.toLowerCase()}` : null;
  }

  // E.164: `+34 612-345-678`, `0034…`, or national forms given the calling code of the country
  // the visitor picked.
  function phone(input, callingCode) {
    const compact = chars(input.trim()).filter((c) => !" -()./\u00a0".includes(c)).join("");
    let digits;
    if (compact.startsWith("+")) digits = compact.slice(1);
    else if (compact.startsWith("00")) digits = compact.slice(2);
    else {
      if (!callingCode) return null;
      digits = callingCode + (compact.startsWith("0") ? compact.slice(1) : compact);
    }
    const ok = digits.length >= 8 && digits.length <= 15 && /^[0-9]+$/.test(digits) && !digits.startsWith("0");
    return ok ? `+${digits}` : null;
  }

  function number(input, { min = null, max = null, integer = false } = {}) {
    let s = input.trim().replace(/[ \u00a0]/g, "");
    if (!s.includes(".") && (s.match(/,/g) || []).length === 1) s = s.replace(",", ".");
    if (!s || s.length > 40 || !/^[0-9.+-]+$/.test(s)) return null;
    // Rust's f64 grammar over these characters: an optional sign, digits with at most one point.
    if (!/^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)$/.test(s)) return null;
    const v = Number(s);
    if (!Number.isFinite(v)) return null;
    const isInt = Number.isInteger(v) && Math.abs(v) < 1e15;
    if (integer && !isInt) return null;
    if ((min !== null && v < min) || (max !== null && v > max)) return null;
    return isInt ? String(Math.trunc(v) === 0 ? 0 : Math.trunc(v)) : String(v);
  }

  function yesNo(input) {
    const n = normalise(input);
    if (YES.includes(n)) return "yes";
    if (NO.includes(n)) return "no";
    return null;
  }
  const YES = ["yes", "y", "yeah", "yep", "sure", "ok", "okay", "accept", "i accept", "agree", "i agree",
    "si", "s", "claro", "vale", "acepto", "de acuerdo", "sim", "oui", "ja"];
  const NO = ["no", "n", "nope", "decline", "i decline", "rechazo", "no acepto", "nao", "non", "nein"];

  const MONTHS = {
    january: 1, february: 2, march: 3, april: 4, may: 5, june: 6, july: 7, august: 8,
    september: 9, october: 10, november: 11, december: 12,
    enero: 1, febrero: 2, marzo: 3, abril: 4, mayo: 5, junio: 6, julio: 7, agosto: 8,
    septiembre: 9, setiembre: 9, octubre: 10, noviembre: 11, diciembre: 12,
    jan: 1, feb: 2, mar: 3, apr: 4, jun: 6, jul: 7, aug: 8, sep: 9, sept: 9, oct: 10, nov: 11, dec: 12,
    ene: 1, abr: 4, ago: 8, dic: 12,
  };

  const pad = (n, w) => String(n).padStart(w, "0");
  const iso = (y, m, d) => `${pad(y, 4)}-${pad(m, 2)}-${pad(d, 2)}`;
  function realDate(y, m, d) {
    if (!(m >= 1 && m <= 12 && d >= 1)) return null;
    const days = new Date(Date.UTC(y, m, 0)).getUTCDate();
    return d <= days ? iso(y, m, d) : null;
  }

  // `today` is "YYYY-MM-DD" (the visitor's day); bounds are ISO dates or "today".
  function date(input, { language = "en", today, min = null, max = null } = {}) {
    const s = normalise(input);
    let m = /^(\d{4})-(\d{1,2})-(\d{1,2})$/.exec(s);
    let out = m ? realDate(+m[1], +m[2], +m[3]) : null;
    if (!out) {
      const tokens = s.split(/[^\p{L}\p{N}]+/u).filter((t) => t && !["de", "del", "of", "the"].includes(t));
      if (tokens.length !== 3) return null;
      const thisYear = +today.slice(0, 4) % 100;
      const year = (t) => {
        if (!/^\d+$/.test(t)) return null;
        if (t.length === 4) return +t;
        if (t.length === 2) return +t <= thisYear ? 2000 + +t : 1900 + +t;
        return null;
      };
      const day = (t) => {
        const d = t.replace(/\p{Alphabetic}+$/u, "");
        return d && d.length <= 2 && /^\d+$/.test(d) ? +d : null;
      };
      const month = (t) => MONTHS[t] || null;
      let parts = null;
      if (month(tokens[0])) parts = [day(tokens[1]), month(tokens[0]), year(tokens[2])];
      else if (month(tokens[1])) parts = [day(tokens[0]), month(tokens[1]), year(tokens[2])];
      else if (tokens.every((t) => /^\d+$/.test(t))) {
        if (tokens[0].length === 4) parts = [day(tokens[2]), +tokens[1], year(tokens[0])];
        else if (language === "en") parts = [day(tokens[1]), +tokens[0], year(tokens[2])];
        else parts = [day(tokens[0]), +tokens[1], year(tokens[2])];
      }
      if (!parts || parts.some((p) => p === null || Number.isNaN(p))) return null;
      out = realDate(parts[2], parts[1], parts[0]);
      if (!out) return null;
    }
    const bound = (b) => (b === "today" ? today : b);
    if ((min && out < bound(min)) || (max && out > bound(max))) return null;
    return out;
  }

  function text(input, { min_length = 0, max_length = Infinity } = {}) {
    const t = input.trim();
    const n = chars(t).length;
    return n < min_length || n > max_length ? null : t;
  }

  return { normalise, email, phone, number, yesNo, date, text };
})();

if (typeof module !== "undefined" && module.exports) module.exports = PrechatValidators;
