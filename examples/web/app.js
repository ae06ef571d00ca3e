// The page: get a bearer token, fetch a link token, only then open Plaid Link, send what Link
// gives onSuccess to the service (POST /items), and list the user's banks (GET /items) with
// what each needs: reconnecting in Link's update mode (then POST /items/{item_id}/refresh), or
// removing (DELETE /items/{item_id}).
// Every outcome is shown in words a user (and a support agent) can act on.
import { developmentToken, exchangePublicToken, fetchLinkToken, listItems, refreshItem, removeItem, RETRY_POLICY, withRetries } from "./api.js";
import { openLink, PLAID_LINK_SCRIPT, STAND_IN_LINK_SCRIPT } from "./link.js";
import { forgetToken, isOAuthReturn, rememberToken, storedToken } from "./oauth.js";

const $ = (id) => document.getElementById(id);
const form = $("connect-form");
const connectButton = $("connect");
const status = $("status");
const statusTitle = $("status-title");
const statusText = $("status-text");
const statusDetails = $("status-details");
const eventLog = $("link-events");
const itemsSection = $("items");
const itemsStatus = $("items-status");
const itemsDetails = $("items-details");
const itemList = $("item-list");

// The service's error table (generated from its code by infra/webclient/web_error_table.py).
const errorTable = fetch(new URL("./errors.json", import.meta.url))
  .then((response) => response.json())
  .catch(() => ({ problems: {}, api_gateway: {}, plaid_rejections: {}, link_exit: {} }));

const FINAL_STATES = new Set(["success", "duplicate", "repaired", "removed", "exit", "error"]);
const BUSY_STATES = new Set(["fetching", "waiting", "opening", "exchanging", "refreshing", "removing"]);

// What each Item health means for the user, and the button that fixes it (docs/items.md).
// Update mode ("Repair connection") is offered for every Item the bank still serves: the
// service learns of a bank's demands from Plaid's webhooks, so a connection can need repair
// before its stored health says so.
const HEALTH = {
  healthy: { label: "Connected", text: "Everything works.", action: "Repair connection" },
  login_required: {
    label: "Needs reconnecting",
    text: "Your bank wants you to log in again before the app can see new activity.",
    action: "Reconnect",
  },
  pending_expiration: {
    label: "Access ends soon",
    text: (item) => `Your permission to share this bank ends ${item.consent_expiration_time ? `on ${day(item.consent_expiration_time)}` : "soon"}: reconnect to keep it.`,
    action: "Reconnect",
  },
  pending_disconnect: {
    label: "Disconnecting soon",
    text: "Your bank will stop sharing this connection soon: reconnect to keep it.",
    action: "Reconnect",
  },
  new_accounts_available: {
    label: "New accounts found",
    text: "Your bank has accounts you have not shared with the app yet: reconnect to choose them.",
    action: "Reconnect",
  },
  revoked: {
    label: "Disconnected",
    text: "Access was revoked at your bank. Remove this connection, then link the bank again.",
    action: null,
  },
};

// What the user started: "new" (link a bank), "update" (reconnect one), "remove", and the
// Link session open now: {itemId, name} (itemId null for a new Item).
let flow = "new";
let linkSession = null;
let items = []; // the list shown
let listGeneration = 0; // only the latest GET /items is shown
let listLoads = 0;

/** Show one state: a heading, a sentence, and facts as a definition list. */
function show(state, title, text, details = []) {
  status.dataset.state = state;
  status.setAttribute("aria-busy", String(!FINAL_STATES.has(state) && state !== "idle" && state !== "link-open"));
  statusTitle.textContent = title;
  statusText.textContent = text;
  renderDetails(statusDetails, details);
  const busy = BUSY_STATES.has(state);
  connectButton.disabled = busy;
  for (const button of itemList.querySelectorAll("button")) button.disabled = busy;
  const failed = state === "error" || state === "exit";
  connectButton.textContent = failed && flow === "new" ? "Try again" : state === "success" || state === "duplicate" ? "Connect another account" : "Connect a bank account";
  // Move focus to the outcome so keyboard and screen reader users land on it.
  if (FINAL_STATES.has(state)) statusTitle.focus();
}

function renderDetails(list, details) {
  list.replaceChildren(
    ...details.flatMap(([term, value]) => {
      const dt = document.createElement("dt");
      dt.textContent = term;
      const dd = document.createElement("dd");
      dd.textContent = value;
      return [dt, dd];
    }),
  );
  list.hidden = details.length === 0;
}

/** A note that stays visible across the states that follow (why Link restarted). */
function showNotice(text) {
  const notice = $("notice");
  notice.textContent = text || "";
  notice.hidden = !text;
}

function showStandIn(standIn) {
  $("standin-banner").hidden = !standIn;
}

function bearerToken() {
  const pasted = $("bearer").value.trim();
  return pasted || developmentToken($("sub").value.trim());
}

function endpoint() {
  return $("endpoint").value.trim() || "/link-token";
}

/** A countdown for a retryable answer, shown as the "waiting" state. */
function waiting(what) {
  return (delayMs, outcome, attempt) =>
    show("waiting", "Waiting before trying again…", `${what}: the service asked to retry (${describeBriefly(outcome)}). Attempt ${attempt + 1} of ${RETRY_POLICY.maxAttempts} in ${(delayMs / 1000).toFixed(1)} s.`);
}

/** Link a new bank (no item), or reconnect `item` in Link's update mode. */
async function connect(item = null) {
  flow = item ? "update" : "new";
  const name = item ? institutionName(item) : null;
  if (item) {
    show("fetching", `Getting a link token to reconnect ${name}…`, "Asking the service for an update-mode link token for this bank. Plaid Link opens only once there is one.");
  } else {
    show("fetching", "Getting a link token…", "Asking the service for a link token. Plaid Link opens only once there is one.");
  }
  const outcome = await fetchLinkToken({
    endpoint: endpoint(),
    bearer: bearerToken(),
    body: item ? { platform: "web", item_id: item.item_id } : { platform: "web" },
    onWait: waiting("Getting a link token"),
  });
  if (outcome.kind !== "token") {
    showFailure(outcome, await errorTable, item ? "reconnect this bank" : "create a link token");
    if (outcome.problem?.code === "ITEM_NOT_FOUND") loadItems();
    return;
  }
  const itemId = item ? item.item_id : null;
  rememberToken(outcome.token, outcome.standIn, { item_id: itemId, sub: $("sub").value, bearer: $("bearer").value, endpoint: $("endpoint").value });
  linkSession = { itemId, name };
  await startLink(outcome.token.link_token, outcome.standIn, null);
}

async function startLink(token, standIn, receivedRedirectUri) {
  showStandIn(standIn);
  show("opening", "Opening Plaid Link…", receivedRedirectUri ? "Back from your bank: resuming Link with the same link token." : "The link token is here; loading Plaid Link.");
  try {
    await openLink({
      token,
      scriptUrl: standIn ? STAND_IN_LINK_SCRIPT : PLAID_LINK_SCRIPT,
      receivedRedirectUri,
      onSuccess,
      onExit,
      onEvent,
    });
  } catch (error) {
    show("error", "Plaid Link could not be loaded", `${error.message}. Check the network, ad blockers, and any Content Security Policy (script-src and frame-src must allow https://cdn.plaid.com).`);
    return;
  }
  if (status.dataset.state === "opening") {
    show("link-open", "Plaid Link is open", "Finish in the Plaid Link window; this page shows the outcome.");
  }
}

/** Link's onSuccess: a new Item's public_token goes to the service at once, exactly as Link
 * gave it; update mode has nothing to exchange (the Item and its access_token stay). */
async function onSuccess(publicToken, metadata) {
  const session = linkSession || { itemId: null, name: null };
  linkSession = null;
  forgetToken(); // a link token serves one Link session
  clearOAuthQuery();
  if (session.itemId) {
    await finishUpdate(session);
    return;
  }
  const bank = metadata?.institution?.name || "your bank";
  show("exchanging", `Saving the connection to ${bank}…`, "Link gave this page a public_token; the service exchanges it now (POST /items) and keeps the connection.");
  const outcome = await withRetries(() => exchangePublicToken({ endpoint: endpoint(), bearer: bearerToken(), publicToken, metadata }), {
    onWait: waiting("Saving the connection"),
  });
  const table = await errorTable;
  if (outcome.kind === "ok") {
    const item = outcome.body;
    await loadItems({ highlight: item.item_id });
    show("success", "Bank account linked", `${institutionName(item)} is connected: ${describeAccounts(item.accounts)}. It is in the list below.`, [
      ["Institution", institutionName(item)],
      ["Accounts", describeAccounts(item.accounts)],
      ["item_id", item.item_id],
      ["request_id (for support)", item.request_id || "—"],
    ]);
    return;
  }
  if (outcome.kind === "problem" && outcome.problem.code === "DUPLICATE_ITEM") {
    const existingId = outcome.problem.item_id;
    await loadItems({ highlight: existingId });
    const existing = items.find((item) => item.item_id === existingId);
    const which = existing ? `${institutionName(existing)} before (${describeAccounts(existing.accounts)})` : `${bank} before`;
    show("duplicate", "This bank is already linked", `You linked ${which}, so nothing new was added. It is marked in the list below: reconnect it there if it needs it.`, [
      ["Code", outcome.problem.code],
      ["Existing item_id", existingId || "—"],
      ["request_id (for support)", outcome.problem.request_id || "—"],
    ]);
    return;
  }
  const advice =
    outcome.kind === "problem" && outcome.problem.code === "INVALID_PUBLIC_TOKEN"
      ? "Nothing was linked. Press “Try again” to open Link again: the new public token is exchanged at once."
      : "";
  showFailure(outcome, table, "save the bank connection", advice);
}

/** Update mode succeeded: ask the service to refresh the Item's health from Plaid (it does not
 * wait for Plaid's webhook), list the banks, and say what changed. */
async function finishUpdate(session) {
  show("refreshing", "Reconnected: checking the connection…", "Link finished in update mode. There is nothing to exchange: the connection is repaired in place, and the service now asks Plaid how it is (POST /items/…/refresh).");
  const refreshed = await withRetries(() => refreshItem({ endpoint: endpoint(), bearer: bearerToken(), itemId: session.itemId }), {
    onWait: waiting("Checking the connection"),
  });
  await loadItems({ highlight: session.itemId });
  const item = items.find((entry) => entry.item_id === session.itemId);
  const name = item ? institutionName(item) : session.name || "The bank";
  let text = `Link repaired the connection to ${name}; it keeps its accounts, and nothing new was linked.`;
  if (refreshed.kind !== "ok") {
    text += ` The service could not check it with Plaid just now (${describeBriefly(refreshed)}): the list updates when Plaid confirms the repair.`;
  } else if (item && HEALTH[item.health]?.action === "Reconnect") {
    text += ` Plaid still reports “${HEALTH[item.health].label}”: reconnect again, or contact the bank.`;
  }
  show("repaired", `${name} reconnected`, text, [
    ["item_id", session.itemId],
    ["Status in the list", item ? healthOf(item).label : "— (not in the list)"],
    ...(refreshed.kind === "ok" ? [["request_id (for support)", refreshed.body.request_id || "—"]] : []),
  ]);
}

async function remove(item) {
  flow = "remove";
  const name = institutionName(item);
  show("removing", `Removing ${name}…`, "Asking the service to disconnect this bank (DELETE /items/…): Plaid stops sharing its data with this app.");
  const outcome = await withRetries(() => removeItem({ endpoint: endpoint(), bearer: bearerToken(), itemId: item.item_id }), {
    onWait: waiting("Removing the bank"),
  });
  if (outcome.kind === "ok") {
    await loadItems();
    show("removed", `${name} removed`, "The bank is disconnected: this app no longer sees its accounts. You can link it again at any time.", [["item_id", item.item_id]]);
    return;
  }
  showFailure(outcome, await errorTable, "remove this bank");
  if (outcome.problem?.code === "ITEM_NOT_FOUND") loadItems(); // docs/clients.md: refresh
}

async function onExit(error, metadata) {
  linkSession = null;
  forgetToken(); // the next Link session gets a fresh token
  clearOAuthQuery();
  if (!error) {
    show("exit", "Plaid Link closed", "Link was closed before it finished. Try again whenever you are ready; a new link token will be fetched.", [
      ["link_session_id", metadata?.link_session_id || "—"],
    ]);
    return;
  }
  const table = await errorTable;
  const fix = table.link_exit[error.error_code];
  show("exit", `Plaid Link stopped: ${error.error_code}`, error.display_message || error.error_message || "Plaid Link reported an error.", [
    ["Plaid error_code", error.error_code],
    ["error_type", error.error_type || "—"],
    ["What to do", fix || "See Plaid's error reference for this code; report the request id below."],
    ["Plaid request_id", metadata?.request_id || "—"],
    ["link_session_id", metadata?.link_session_id || "—"],
  ]);
}

function onEvent(eventName, metadata) {
  const item = document.createElement("li");
  item.textContent = metadata?.error_code ? `${eventName} (${metadata.error_code})` : eventName;
  eventLog.append(item);
}

// ---------------------------------------------------------------------- the list -----

/** GET /items and show the list; `highlight` marks one Item (the one just linked, or the
 * existing one a duplicate names). Only the latest call's answer is shown. */
async function loadItems({ highlight = null } = {}) {
  const mine = ++listGeneration;
  itemsSection.setAttribute("aria-busy", "true");
  itemsStatus.textContent = "Loading your banks…";
  const outcome = await withRetries(() => listItems({ endpoint: endpoint(), bearer: bearerToken() }));
  const table = outcome.kind === "ok" ? null : await errorTable;
  if (mine !== listGeneration) return;
  if (outcome.kind === "ok") {
    items = outcome.body.items;
    itemList.replaceChildren(...items.map((item) => renderItem(item, item.item_id === highlight)));
    itemsStatus.textContent = items.length === 0 ? "No bank linked yet: connect one above." : `${items.length} linked bank${items.length === 1 ? "" : "s"}.`;
    renderDetails(itemsDetails, []);
    itemsSection.dataset.state = "ready";
  } else {
    items = [];
    itemList.replaceChildren(); // never another user's list, or a stale one
    const { title, text, details } = describeFailure(outcome, table, "list your banks");
    itemsStatus.textContent = `Your banks could not be listed: ${title}. ${text}`.trim();
    renderDetails(itemsDetails, details);
    itemsSection.dataset.state = "error";
  }
  const busy = BUSY_STATES.has(status.dataset.state);
  for (const button of itemList.querySelectorAll("button")) button.disabled = busy;
  listLoads += 1;
  itemsSection.dataset.loads = String(listLoads);
  itemsSection.setAttribute("aria-busy", "false");
}

function renderItem(item, highlighted) {
  const name = institutionName(item);
  const health = healthOf(item);
  const entry = element("li", { class: "item", "data-item-id": item.item_id, "data-health": item.health });
  if (highlighted) {
    entry.classList.add("highlight");
    entry.setAttribute("aria-current", "true");
  }
  const heading = element("h3", {}, name);
  const state = element("p", { class: "health" });
  state.append(element("strong", {}, health.label), document.createTextNode(` ${health.text}`));
  const accounts = element("ul", { class: "accounts", "aria-label": `Accounts at ${name}` });
  for (const account of item.accounts || []) {
    const mask = account.mask ? ` ending in ${account.mask}` : "";
    accounts.append(element("li", {}, `${account.name || "Account"}${mask}${account.subtype ? ` (${account.subtype})` : ""}`));
  }
  const meta = element("p", { class: "item-meta" }, `Linked ${day(item.created_at)} · item_id ${item.item_id}`);
  const actions = element("div", { class: "item-actions" });
  if (health.action) actions.append(itemButton(health.action, name, () => connect(item), health.action === "Reconnect" ? "" : "secondary"));
  actions.append(itemButton("Remove", name, () => remove(item), "danger"));
  entry.append(heading, state, accounts, meta, actions);
  return entry;
}

/** A button whose accessible name says which bank ("Remove First Platypus Bank"). */
function itemButton(label, name, onClick, kind) {
  const button = element("button", { type: "button", class: kind });
  button.append(document.createTextNode(label), element("span", { class: "visually-hidden" }, ` ${name}`));
  button.addEventListener("click", onClick);
  return button;
}

function healthOf(item) {
  const known = HEALTH[item.health];
  if (!known) return { label: "Status unknown", text: `The service reports “${item.health}”.`, action: "Repair connection" };
  return { ...known, text: typeof known.text === "function" ? known.text(item) : known.text };
}

function institutionName(item) {
  return item?.institution?.name || item?.institution?.institution_id || "Your bank";
}

function describeAccounts(accounts) {
  const names = (accounts || []).map((a) => `${a.name || "Account"}${a.mask ? ` ending in ${a.mask}` : ""}`);
  return names.join(", ") || "no accounts";
}

function day(iso) {
  const when = new Date(iso);
  return Number.isNaN(when.getTime()) ? "—" : when.toLocaleDateString(undefined, { year: "numeric", month: "short", day: "numeric" });
}

function element(tag, attributes = {}, text = undefined) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) if (value) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

// ---------------------------------------------------------------------- failures -----

/** One short phrase for what the service answered, for the retry countdown. */
function describeBriefly(outcome) {
  if (outcome.kind === "problem") return `${outcome.status} ${outcome.problem.code}`;
  if (outcome.kind === "gateway") return `${outcome.status} from API Gateway: ${outcome.message}`;
  if (outcome.kind === "network") return "no answer";
  return `HTTP ${outcome.status}`;
}

function showFailure(outcome, table, action, advice = "") {
  const { title, text, details } = describeFailure(outcome, table, action);
  show("error", title, [text, advice].filter(Boolean).join(" "), details);
}

/** {title, text, details} for a call that failed; `action` says what the page tried. */
function describeFailure(outcome, table, action) {
  if (outcome.kind === "problem") return describeProblem(outcome, table, action);
  if (outcome.kind === "gateway") return describeGateway(outcome, table);
  if (outcome.kind === "network") {
    const why = outcome.crossOrigin
      ? `The service may be down or unreachable, or it refused this page's origin (CORS: ${window.location.origin} must be in its ALLOWED_ORIGINS). The browser does not tell pages which; its developer console does.`
      : "The service may be down or unreachable: check that make serve (or your API) is running and that you are online.";
    return { title: "Could not reach the service", text: `No answer from ${outcome.url}. ${why}`, details: [["Attempts", String(outcome.attempts)]] };
  }
  return {
    title: `Unexpected answer from the service (HTTP ${outcome.status})`,
    text: "It is neither the answer expected nor a documented error: a proxy, a captive portal, or a wrong endpoint URL?",
    details: [["Content-Type", outcome.contentType || "—"]],
  };
}

function describeProblem({ status: httpStatus, problem, retryable, retryAfterSeconds, attempts, developmentService }, table, action) {
  const details = [
    ["Code", problem.code],
    ["HTTP status", String(httpStatus)],
    ["request_id (for support)", problem.request_id || "—"],
  ];
  if (problem.plaid_request_id) details.push(["Plaid request_id", problem.plaid_request_id]);
  if (problem.plaid_error_code) {
    details.push(["Plaid error_code", problem.plaid_error_code]);
    // The cause is for the operator: shown only against a developer's own service (loopback
    // or the local stand-in), never to the end users of a deployed one.
    const hint = developmentService ? table.plaid_rejections[problem.plaid_error_code] : undefined;
    if (hint) details.push(["Operator hint", hint]);
  }
  const row = table.problems[problem.code];
  if (row) details.push(["What the app does", row.app_should]);
  let text = problem.detail || "";
  if (retryable) {
    text += retryAfterSeconds !== null && retryAfterSeconds * 1000 > RETRY_POLICY.capMs
      ? ` The service asks to wait ${retryAfterSeconds} s: please try again then.`
      : ` Tried ${attempts} times; please try again in a minute.`;
  }
  return { title: problem.title || `The service could not ${action}`, text: text.trim(), details };
}

function describeGateway({ status: httpStatus, message, apigwRequestId, attempts }, table) {
  const row = table.api_gateway[String(httpStatus)];
  const titles = {
    401: "You are not signed in (401 Unauthorized)",
    403: "Not allowed (403 Forbidden)",
    429: "Too many requests right now (429)",
  };
  const texts = {
    401: "API Gateway refused the bearer token: missing, malformed, expired, or for another issuer or audience. Sign in again (locally: check the development user or the pasted token) and retry.",
    429: `API Gateway is throttling requests. Tried ${attempts} times with backoff; please try again in a minute.`,
  };
  const details = [
    ["HTTP status", String(httpStatus)],
    ["Message", message],
    ["apigw-requestid", apigwRequestId || "— (API Gateway answered; the service never ran)"],
  ];
  if (row) details.push(["Produced by", row.produced_by], ["What the app does", row.app_should]);
  return {
    title: titles[httpStatus] || `The API answered ${httpStatus} ${message}`,
    text: texts[httpStatus] || "API Gateway answered by itself; the service did not run.",
    details,
  };
}

function clearOAuthQuery() {
  if (isOAuthReturn()) window.history.replaceState(null, "", window.location.pathname);
}

/**
 * The return from a bank's OAuth page. Only this tab's own Link session is resumed, with the
 * token it stored before the redirect (and that session's user, service and Item); nothing
 * is fetched from POST /link-token without the user's click, so a crafted link with
 * `?oauth_state_id=` cannot make the page ask the service for a token.
 */
function resumeOAuth() {
  const saved = storedToken();
  if (saved.token) {
    const { sub, bearer, endpoint: savedEndpoint, item_id: itemId } = saved.token;
    if (sub) $("sub").value = sub;
    if (bearer) $("bearer").value = bearer;
    if (savedEndpoint) $("endpoint").value = savedEndpoint;
    flow = itemId ? "update" : "new";
    linkSession = { itemId: itemId || null, name: null };
    startLink(saved.token.link_token, saved.token.stand_in === true, window.location.href);
    return;
  }
  const why = saved.expired
    ? "Back from your bank, but the link token expired meanwhile, so Link cannot resume. Press the button to start again with a new one."
    : "Back from your bank, but this tab has no Link session from before the redirect (a different tab or address?), so Link cannot resume. Press the button to start again.";
  clearOAuthQuery();
  showNotice(why);
  showReady();
}

function showReady() {
  show("idle", "Ready", "Press the button to fetch a link token and open Plaid Link.");
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  showNotice("");
  connect();
});
// Another user, another list.
for (const field of [$("sub"), $("bearer")]) field.addEventListener("change", () => loadItems());
$("refresh-items").addEventListener("click", () => loadItems());

if (isOAuthReturn()) {
  resumeOAuth();
} else {
  showReady();
}
loadItems();
