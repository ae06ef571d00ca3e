// Call the service (POST /link-token, POST /items, GET /items, DELETE /items/{item_id},
// POST /items/{item_id}/refresh) and say exactly what went wrong when a call fails.
//
// Two components can answer: the service (RFC 9457 problem documents with `code`,
// `retryable`, `request_id`) and API Gateway itself (`{"message": "..."}`, no request id).
// docs/errors.md describes both; this module tells them apart and decides about retries.

// Retries: only when the answer says so (`retryable: true`, or an API Gateway status that is
// documented as transient), at most `maxAttempts` calls, never waiting longer than `capMs`.
export const RETRY_POLICY = Object.freeze({
  maxAttempts: 3,
  baseDelayMs: 1000, // first backoff when no Retry-After is given
  capMs: 10000, // a longer Retry-After is handed to the user instead of waited for
  jitter: 0.2, // Retry-After is a minimum: add up to 20 % so clients do not return in lockstep
});

// API Gateway's own answers that docs/errors.md says to retry (throttling, unreachable
// integration, integration timeout). Its 401/403/404/500 are not retried.
const GATEWAY_RETRYABLE = new Set([429, 503, 504]);

/**
 * One call to the service. Never throws; the result says what happened:
 *   {kind: "ok", status, body, standIn}   `accept(status, body)` said it is the answer wanted
 *       (body is null for a 204)
 *   {kind: "problem", status, problem, retryable, retryAfterSeconds, developmentService}
 *       the service's error; `developmentService` (see isDevelopmentService) lets the page
 *       show operator details that end users of a real deployment must not see
 *   {kind: "gateway", status, message, retryable, retryAfterSeconds, apigwRequestId}
 *   {kind: "network", url, crossOrigin}   no answer at all (offline, refused, or CORS)
 *   {kind: "unexpected", status, contentType}   an answer that is none of the above
 * `body` (JSON) is sent only when given.
 */
export async function callService({ url, method, bearer, body, accept, fetchImpl = fetch }) {
  const target = new URL(url, window.location.href);
  const headers = { Authorization: `Bearer ${bearer}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetchImpl(target, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit", // the bearer token is the only credential; no cookies
      cache: "no-store",
    });
  } catch {
    // The browser hides why (offline, connection refused, DNS, or a CORS refusal): say what
    // is possible, and mention CORS only when the request was cross-origin.
    return { kind: "network", url: target.href, crossOrigin: target.origin !== window.location.origin };
  }
  return classify(response, target, accept);
}

/**
 * `POST /link-token`: {kind: "token", token: {link_token, expiration, request_id,
 * plaid_request_id}, standIn}, or one of callService's failures. `body.item_id` asks for an
 * update-mode token for that Item.
 */
export async function requestLinkToken({ endpoint, bearer, body, fetchImpl = fetch }) {
  const outcome = await callService({
    url: endpoint,
    method: "POST",
    bearer,
    body,
    fetchImpl,
    accept: (status, doc) => status === 200 && typeof doc?.link_token === "string" && doc.link_token !== "",
  });
  return outcome.kind === "ok" ? { kind: "token", token: outcome.body, standIn: outcome.standIn } : outcome;
}

/** Where the Items routes are: beside the link token endpoint (…/link-token -> …/items). */
export function itemsUrl(endpoint, itemId) {
  const base = new URL("items", new URL(endpoint, window.location.href));
  return itemId === undefined ? base : new URL(`items/${encodeURIComponent(itemId)}`, base);
}

/** `POST /items` with Link's onSuccess arguments as Link gave them: 201 {item_id, ...}. */
export function exchangePublicToken({ endpoint, bearer, publicToken, metadata }) {
  return callService({
    url: itemsUrl(endpoint),
    method: "POST",
    bearer,
    body: { public_token: publicToken, metadata },
    accept: (status, doc) => status === 201 && typeof doc?.item_id === "string",
  });
}

/** `GET /items`: 200 {items: [...]}. */
export function listItems({ endpoint, bearer }) {
  return callService({
    url: itemsUrl(endpoint),
    method: "GET",
    bearer,
    accept: (status, doc) => status === 200 && Array.isArray(doc?.items),
  });
}

/** `POST /items/{item_id}/refresh` after update mode: 200 {item, request_id}, the Item with
 * the health Plaid reports now. */
export function refreshItem({ endpoint, bearer, itemId }) {
  return callService({
    url: new URL("refresh", `${itemsUrl(endpoint, itemId)}/`),
    method: "POST",
    bearer,
    accept: (status, doc) => status === 200 && typeof doc?.item?.item_id === "string" && typeof doc?.item?.health === "string",
  });
}

/** `DELETE /items/{item_id}`: 204. */
export function removeItem({ endpoint, bearer, itemId }) {
  return callService({ url: itemsUrl(endpoint, itemId), method: "DELETE", bearer, accept: (status) => status === 204 });
}

async function classify(response, url, accept) {
  const status = response.status;
  const contentType = response.headers.get("Content-Type") || "";
  const retryAfterSeconds = parseRetryAfter(response.headers.get("Retry-After"));
  let doc = null;
  try {
    doc = await response.json();
  } catch {
    doc = null; // not JSON: an HTML error page from a proxy, an empty body (a 204)...
  }
  // `make serve` marks answers made with the local Plaid stand-in; the page then opens the
  // Link stand-in too (real Link cannot open a stand-in's token).
  const standIn = (response.headers.get("X-Plaid-Stand-In") || "").startsWith("not-plaid");
  if (accept(status, doc)) {
    return { kind: "ok", status, body: doc, standIn };
  }
  if (doc && typeof doc.code === "string") {
    return {
      kind: "problem",
      status,
      problem: doc,
      retryable: doc.retryable === true,
      retryAfterSeconds,
      developmentService: isDevelopmentService(url, standIn),
    };
  }
  if (doc && typeof doc.message === "string" && Object.keys(doc).length === 1) {
    return {
      kind: "gateway",
      status,
      message: doc.message,
      retryable: GATEWAY_RETRYABLE.has(status),
      retryAfterSeconds,
      apigwRequestId: response.headers.get("apigw-requestid"),
    };
  }
  return { kind: "unexpected", status, contentType, retryable: false };
}

/**
 * True when the service is a developer's own: its URL is on loopback (`make serve` on this
 * machine), or its answer carries make serve's stand-in marker. Only then does the page show
 * what the operator should fix; a deployed API's users see the code and the request id.
 */
export function isDevelopmentService(url, standIn) {
  const host = url.hostname;
  const loopback =
    host === "localhost" || host.endsWith(".localhost") || host === "[::1]" || /^127(\.\d{1,3}){3}$/.test(host);
  return loopback || standIn === true;
}

/** Seconds from a Retry-After header (delta-seconds or an HTTP date); null when absent/bad. */
export function parseRetryAfter(value, now = Date.now()) {
  if (value === null || value === undefined || value.trim() === "") return null;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const when = Date.parse(value);
  return Number.isNaN(when) ? null : Math.max(0, Math.ceil((when - now) / 1000));
}

/**
 * How long to wait before attempt `attempt + 1`, or null when the client should not retry
 * (not retryable, attempts used up, or the server asks for a pause longer than the cap).
 */
export function retryDelayMs(outcome, attempt, policy = RETRY_POLICY, random = Math.random) {
  if (!outcome.retryable || attempt >= policy.maxAttempts) return null;
  if (outcome.retryAfterSeconds !== null && outcome.retryAfterSeconds !== undefined) {
    const minimum = outcome.retryAfterSeconds * 1000;
    if (minimum > policy.capMs) return null;
    return Math.round(minimum * (1 + policy.jitter * random()));
  }
  // No Retry-After (API Gateway throttling, a transient 503): exponential backoff with
  // "equal jitter" (half fixed, half random) so a retry never fires immediately.
  const ceiling = Math.min(policy.capMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return Math.round(ceiling / 2 + (ceiling / 2) * random());
}

/**
 * Make `call()` until it gives the answer wanted or a final one, waiting between retryable
 * answers (the same request again: a retried POST /items with the same public_token gets
 * the first request's answer). `onWait(delayMs, outcome, attempt)` lets the page show the
 * countdown.
 */
export async function withRetries(call, { onWait = () => {}, sleep = defaultSleep, policy = RETRY_POLICY } = {}) {
  for (let attempt = 1; ; attempt += 1) {
    const outcome = await call();
    outcome.attempts = attempt;
    if (outcome.kind === "token" || outcome.kind === "ok") return outcome;
    const delay = retryDelayMs(outcome, attempt, policy);
    if (delay === null) return outcome;
    onWait(delay, outcome, attempt);
    await sleep(delay);
  }
}

/** POST /link-token with retries (see withRetries). */
export function fetchLinkToken({ endpoint, bearer, body, onWait, sleep, policy }) {
  return withRetries(() => requestLinkToken({ endpoint, bearer, body }), { onWait, sleep, policy });
}

function defaultSleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * A development token for `make serve`: an unsigned JWT whose `sub` is the user. The local
 * server's authorizer reads the claims without checking a signature; a deployed API
 * Gateway rejects it (401), as it should.
 */
export function developmentToken(sub, now = Date.now()) {
  const seconds = Math.floor(now / 1000);
  const header = { alg: "none", typ: "JWT" };
  const claims = { sub, iat: seconds, exp: seconds + 3600 };
  return `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}.`;
}

function base64url(text) {
  const bytes = new TextEncoder().encode(text);
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}
