// The console's passkey ceremonies and live queue. WebAuthn options come from the server as JSON
// (py_webauthn's), are parsed by the browser (PublicKeyCredential.parse*OptionsFromJSON) and the credential goes
// back as PublicKeyCredential.toJSON(). Every POST carries the session's CSRF token.

const csrf = document.querySelector('meta[name="csrf-token"]')?.content ?? "";
const outcome = () => document.getElementById("outcome");

async function post(path, body) {
  const answer = await fetch(path, {
    method: "POST", credentials: "same-origin",
    headers: { "content-type": "application/json", "x-csrf-token": csrf },
    body: JSON.stringify(body),
  });
  const value = await answer.json().catch(() => ({}));
  if (!answer.ok) {
    const code = (value.type || "").replace("urn:tabellion:error:", "");
    const error = new Error(`${value.title || answer.status}: ${value.detail || ""}`);
    error.code = code || String(answer.status);
    throw error;
  }
  return value;
}

async function create(options) {
  const credential = await navigator.credentials.create({ publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options) });
  return credential.toJSON();
}

async function get(options) {
  const credential = await navigator.credentials.get({ publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options) });
  return credential.toJSON();
}

function say(kind, lines, code = "") {
  const box = outcome();
  box.className = `result ${kind}`;
  box.dataset.outcome = kind === "ok" ? "done" : kind;
  box.dataset.code = code;
  box.replaceChildren(...lines.map((line) => {
    const p = document.createElement("p");
    if (line instanceof Node) p.append(line); else p.textContent = line;
    return p;
  }));
  box.focus?.();
}

function link(href, text) {
  const a = document.createElement("a");
  a.href = href; a.textContent = text;
  return a;
}

function refused(error) {
  say("refused", [`Refused: ${error.message}`, "Nothing was logged."], error.code || error.name);
}

// --- enrolment: the passkey is created over the enrolment request, then signs the whole enrolment ------------
document.getElementById("enrol")?.addEventListener("click", async (event) => {
  const invitation = event.currentTarget.dataset.invitation;
  try {
    say("pending", ["Step 1 of 2: creating your passkey…"]);
    const created = await create((await post("/enrol/options", { invitation })).options);
    const consent = await post("/enrol/register", { invitation, credential: created });
    say("pending", ["Step 2 of 2: signing the enrolment with your new passkey (your consent)…"]);
    const signed = await get(consent.options);
    const done = await post("/enrol/consent", { invitation, credential: signed });
    say("ok", [`Your passkey is enrolled, entry ${done.entry}.`, link(done.explorer, "See it on the log"),
      link("/signin", "Sign in")]);
  } catch (error) { refused(error); }
});

// --- sign-in ---------------------------------------------------------------------------------------------------
document.getElementById("signin")?.addEventListener("click", async () => {
  try {
    say("pending", ["Waiting for your passkey…"]);
    const signed = await get((await post("/signin/options", {})).options);
    const done = await post("/signin/verify", { credential: signed });
    say("ok", [`Signed in as ${done.approver}.`]);
    window.location.assign(done.next);
  } catch (error) { refused(error); }
});

// --- decisions: a fresh assertion over exactly this decision ------------------------------------------------
async function decide(form) {
  const body = { claim: form.dataset.claim, kind: form.dataset.kind, text: form.elements.text.value };
  try {
    say("pending", ["Sign this decision with your passkey…"]);
    const start = await post("/decisions/options", body);
    const credential = await get(start.options);
    window.lastDecision = { ...body, credential };  // what was sent, for the record of this page
    const done = await post("/decisions", { ...body, credential });
    const pre = document.createElement("pre");
    pre.textContent = done.commands.join("\n");
    say("ok", [`Logged: the ${done.kind} of claim ${done.claim.slice(0, 12)}… is entry ${done.entry} (index ${done.index}).`,
      link(done.explorer, "The entry and its receipt on the log"), `Receipt: ${done.receipt}`,
      "Check it offline:", pre]);
    await refreshQueue();
  } catch (error) { refused(error); }
}

async function revokeAgent(form) {
  const body = { agent: form.dataset.agent, reason: form.elements.reason.value };
  try {
    say("pending", ["Sign this revocation with your passkey…"]);
    const start = await post("/agents/revoke/options", body);
    const credential = await get(start.options);
    const done = await post("/agents/revoke", { ...body, credential });
    say("ok", [`Logged: ${done.target} is revoked, entry ${done.entry}.`, link(done.explorer, "The entry on the log")]);
  } catch (error) { refused(error); }
}

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form.classList?.contains("decision")) { event.preventDefault(); decide(form); }
  if (form.classList?.contains("revoke")) { event.preventDefault(); revokeAgent(form); }
});

// --- the live queue ------------------------------------------------------------------------------------------
async function refreshQueue() {
  const queue = document.getElementById("queue");
  if (!queue) return;
  const answer = await fetch(queue.dataset.live, { credentials: "same-origin" });
  if (!answer.ok) return;
  const focused = document.activeElement?.id;
  queue.innerHTML = await answer.text();
  queue.dataset.size = String(Number(queue.dataset.size || 0) + 1);
  if (focused) document.getElementById(focused)?.focus();
}

const queue = document.getElementById("queue");
if (queue && window.EventSource) {
  const events = new EventSource("/events");
  events.addEventListener("log", (event) => {
    if (queue.dataset.logSize !== undefined && queue.dataset.logSize !== event.data) refreshQueue();
    queue.dataset.logSize = event.data;
  });
}
