// The page: get a bearer token, fetch a link token, only then open Plaid Link, and show
// every outcome in words a user (and a support agent) can act on.
import { developmentToken, fetchLinkToken, RETRY_POLICY } from "./api.js";
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

// The service's error table (generated from its code by infra/webclient/web_error_table.py).
const errorTable = fetch(new URL("./errors.json", import.meta.url))
  .then((response) => response.json())
  .catch(() => ({ problems: {}, api_gateway: {}, plaid_rejections: {}, link_exit: {} }));

const FINAL_STATES = new Set(["success", "exit", "error"]);

/** Show one state: a heading, a sentence, and facts as a definition list. */
function show(state, title, text, details = []) {
  status.dataset.state = state;
  status.setAttribute("aria-busy", String(!FINAL_STATES.has(state) && state !== "idle" && state !== "link-open"));
  statusTitle.textContent = title;
  statusText.textContent = text;
  statusDetails.replaceChildren(
    ...details.flatMap(([term, value]) => {
      const dt = document.createElement("dt");
      dt.textContent = term;
      const dd = document.createElement("dd");
      dd.textContent = value;
      return [dt, dd];
    }),
  );
  const busy = state === "fetching" || state === "waiting" || state === "opening";
  connectButton.disabled = busy;
  connectButton.textContent = state === "error" || state === "exit" ? "Try again" : state === "success" ? "Connect another account" : "Connect a bank account";
  // Move focus to the outcome so keyboard and screen reader users land on it.
  if (FINAL_STATES.has(state)) statusTitle.focus();
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

async function connect() {
  show("fetching", "Getting a link token…", "Asking the service for a link token. Plaid Link opens only once there is one.");
  const outcome = await fetchLinkToken({
    endpoint: $("endpoint").value.trim() || "/link-token",
    bearer: bearerToken(),
    body: { platform: "web" },
    onWait: (delayMs, waiting, attempt) =>
      show("waiting", "Waiting before trying again…", `The service asked to retry (${describeBriefly(waiting)}). Attempt ${attempt + 1} of ${RETRY_POLICY.maxAttempts} in ${(delayMs / 1000).toFixed(1)} s.`),
  });
  if (outcome.kind !== "token") {
    showFailure(outcome, await errorTable);
    return;
  }
  rememberToken(outcome.token, outcome.standIn);
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

function onSuccess(publicToken, metadata) {
  forgetToken(); // a link token serves one Link session
  clearOAuthQuery();
  const accounts = (metadata.accounts || []).map((a) => `${a.name} (…${a.mask}, ${a.subtype})`).join(", ");
  show("success", "Bank account linked", "Your backend would now exchange this public_token for an access_token (POST /item/public_token/exchange, with your Plaid secret, server side). This example sends it nowhere.", [
    ["public_token", publicToken],
    ["Institution", metadata.institution ? `${metadata.institution.name} (${metadata.institution.institution_id})` : "—"],
    ["Accounts", accounts || "—"],
    ["link_session_id", metadata.link_session_id || "—"],
  ]);
}

async function onExit(error, metadata) {
  forgetToken(); // the next Link session gets a fresh token
  clearOAuthQuery();
  if (!error) {
    show("exit", "Plaid Link closed", "Link was closed before an account was linked. Try again whenever you are ready; a new link token will be fetched.", [
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

/** One short phrase for what the service answered, for the retry countdown. */
function describeBriefly(outcome) {
  if (outcome.kind === "problem") return `${outcome.status} ${outcome.problem.code}`;
  if (outcome.kind === "gateway") return `${outcome.status} from API Gateway: ${outcome.message}`;
  return `HTTP ${outcome.status}`;
}

function showFailure(outcome, table) {
  if (outcome.kind === "problem") return showProblem(outcome, table);
  if (outcome.kind === "gateway") return showGateway(outcome, table);
  if (outcome.kind === "network") {
    const why = outcome.crossOrigin
      ? `The service may be down or unreachable, or it refused this page's origin (CORS: ${window.location.origin} must be in its ALLOWED_ORIGINS). The browser does not tell pages which; its developer console does.`
      : "The service may be down or unreachable: check that make serve (or your API) is running and that you are online.";
    show("error", "Could not reach the service", `No answer from ${outcome.url}. ${why}`, [["Attempts", String(outcome.attempts)]]);
    return;
  }
  show("error", `Unexpected answer from the service (HTTP ${outcome.status})`, "It is neither a link token nor a documented error: a proxy, a captive portal, or a wrong endpoint URL?", [
    ["Content-Type", outcome.contentType || "—"],
  ]);
}

function showProblem({ status: httpStatus, problem, retryable, retryAfterSeconds, attempts, developmentService }, table) {
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
  show("error", problem.title || "The service could not create a link token", text.trim(), details);
}

function showGateway({ status: httpStatus, message, apigwRequestId, attempts }, table) {
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
  show(
    "error",
    titles[httpStatus] || `The API answered ${httpStatus} ${message}`,
    texts[httpStatus] || "API Gateway answered by itself; the service did not produce a link token.",
    details,
  );
}

function clearOAuthQuery() {
  if (isOAuthReturn()) window.history.replaceState(null, "", window.location.pathname);
}

/**
 * The return from a bank's OAuth page. Only this tab's own Link session is resumed, with the
 * token it stored before the redirect; nothing is fetched without the user's click, so a
 * crafted link with `?oauth_state_id=` cannot make the page ask the service for a token.
 */
function resumeOAuth() {
  const saved = storedToken();
  if (saved.token) {
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

if (isOAuthReturn()) {
  resumeOAuth();
} else {
  showReady();
}
