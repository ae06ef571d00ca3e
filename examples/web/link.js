// Load Plaid Link and open it, strictly after a link token exists.
//
// Initializing Link before the token arrives (or with an empty one) is the client-side cause
// behind many "Unable to fetch link_token" reports, so `openLink` refuses to run without one
// and the script itself is only requested once the token is in hand.

export const PLAID_LINK_SCRIPT = "https://cdn.plaid.com/link/v2/stable/link-initialize.js";
// The local Link stand-in (not Plaid): used when the service says its Plaid is the stand-in,
// because real Link cannot open a stand-in's token.
export const STAND_IN_LINK_SCRIPT = new URL("./link-standin.js", import.meta.url).href;

const loaded = new Map(); // script URL -> Promise of window.Plaid

/** Load a Link script once; resolves to `window.Plaid`. */
export function loadLinkScript(src) {
  if (!loaded.has(src)) {
    loaded.set(
      src,
      new Promise((resolve, reject) => {
        const script = document.createElement("script");
        script.src = src;
        script.async = true;
        script.onload = () =>
          window.Plaid && typeof window.Plaid.create === "function"
            ? resolve(window.Plaid)
            : reject(new Error(`${src} loaded but defined no Plaid.create`));
        script.onerror = () => {
          loaded.delete(src); // allow a later retry
          script.remove();
          reject(new Error(`could not load ${src}`));
        };
        document.head.append(script);
      }),
    );
  }
  return loaded.get(src);
}

/**
 * Create a Link handler for `token` and open it. `receivedRedirectUri` is only given when
 * resuming after an OAuth redirect (with the same token as before the redirect).
 */
export async function openLink({ token, scriptUrl, receivedRedirectUri, onSuccess, onExit, onEvent }) {
  if (typeof token !== "string" || token === "") {
    throw new Error("refusing to open Link without a link token");
  }
  const Plaid = await loadLinkScript(scriptUrl);
  const config = { token, onSuccess, onExit, onEvent };
  if (receivedRedirectUri) config.receivedRedirectUri = receivedRedirectUri;
  const handler = Plaid.create(config);
  handler.open();
  return handler;
}
