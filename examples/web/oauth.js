// The OAuth return: some banks send the user away from Link and back to the redirect URI
// (PLAID_REDIRECT_URI) with `?oauth_state_id=...`. Link must then be re-opened with the SAME
// token as before and `receivedRedirectUri` set to the full URL the user came back to.
//
// The token is kept in sessionStorage: it survives the redirect in this tab, dies with the
// tab, and is never shared with other tabs or kept on disk the way localStorage would be.

const KEY = "plaid-link-session";
// A token this close to its expiration is treated as expired: Link would fail mid-flow.
const EXPIRY_MARGIN_MS = 60 * 1000;

/** True when this page load is the return from a bank's OAuth page. */
export function isOAuthReturn(location = window.location) {
  return new URLSearchParams(location.search).has("oauth_state_id");
}

/** Remember the token for the OAuth return: the token, its expiration, whether it came from
 * the local Plaid stand-in (which decides the Link script to load again), and the session's
 * context, so that Link's onSuccess after the return goes where it would have gone without
 * the redirect: `item_id` (update mode: nothing to exchange), and the form's `sub`, `bearer`
 * and `endpoint` (the same user and service; kept in this tab only, dropped with the token). */
export function rememberToken({ link_token, expiration }, standIn, context = {}) {
  const { item_id = null, sub = "", bearer = "", endpoint = "" } = context;
  sessionStorage.setItem(KEY, JSON.stringify({ link_token, expiration, stand_in: standIn === true, item_id, sub, bearer, endpoint }));
}

/**
 * The stored token, or why there is none: {token} | {missing: true} | {expired: true}.
 * An expired token is removed.
 */
export function storedToken(now = Date.now()) {
  let saved = null;
  try {
    saved = JSON.parse(sessionStorage.getItem(KEY) || "null");
  } catch {
    saved = null;
  }
  if (!saved || typeof saved.link_token !== "string" || !saved.link_token) return { missing: true };
  const expires = Date.parse(saved.expiration);
  if (Number.isNaN(expires) || expires - EXPIRY_MARGIN_MS <= now) {
    forgetToken();
    return { expired: true };
  }
  return { token: saved };
}

/** Drop the stored token: after success, or when Link says it is no longer valid. */
export function forgetToken() {
  sessionStorage.removeItem(KEY);
}
