// A stand-in for Plaid Link (https://cdn.plaid.com/link/v2/stable/link-initialize.js). It is
// NOT Plaid: it lets you play the outcomes real Link can have.
//
// The page loads it instead of Plaid's script when the service runs against the local Plaid
// stand-in (whose tokens real Link cannot open); the browser tests serve it in place of
// Plaid's CDN. Every `Plaid.create` call is recorded in `window.__plaidCalls`.
//
// Linking an account does what real Link does with the link token, through a development-only
// route of the server that served the page (make serve, with its Plaid stand-in):
// `POST /_standin/link/complete {link_token, outcome}` finishes the token's Link session at the
// Plaid stand-in. A new Item's token gives a public_token the service can exchange and the
// metadata Link gives onSuccess; an update-mode token repairs the Item. Nothing else is
// contacted; without that route (a page served elsewhere) the dialog says so.
(function () {
  "use strict";
  const calls = (window.__plaidCalls = window.__plaidCalls || []);
  const COMPLETE_PATH = "/_standin/link/complete";

  /** Finish the Link session of `token` at the Plaid stand-in; the answer, or an Error. */
  async function complete(token, outcome, sessionId) {
    let response;
    try {
      response = await fetch(new URL(COMPLETE_PATH, window.location.href), {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ link_token: token, outcome, link_session_id: sessionId }),
        credentials: "omit",
        cache: "no-store",
      });
    } catch {
      throw new Error(`No answer from ${COMPLETE_PATH}: is make serve still running?`);
    }
    const doc = await response.json().catch(() => null);
    if (response.ok && doc && typeof doc.public_token === "string") return doc;
    if (response.status === 404 && doc && typeof doc.message === "string") {
      throw new Error(
        `This page's server cannot finish a Link session (${COMPLETE_PATH} answered 404): open the page from make serve running its Plaid stand-in.`,
      );
    }
    throw new Error(`The Plaid stand-in could not finish this Link session (${response.status}): ${doc?.detail || doc?.message || "no reason given"}.`);
  }

  function id(prefix) {
    return `${prefix}-standin-${Math.random().toString(16).slice(2, 10)}`;
  }

  function button(label, onClick) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = label;
    b.addEventListener("click", onClick);
    return b;
  }

  function create(config) {
    calls.push({
      token: config.token,
      receivedRedirectUri: config.receivedRedirectUri || null,
      at: performance.now(),
    });
    const sessionId = id("session");
    let dialog = null;

    function close() {
      if (dialog) dialog.remove();
      dialog = null;
      document.removeEventListener("keydown", onKey, true);
    }
    function onKey(event) {
      if (event.key === "Escape") {
        event.preventDefault();
        exit(null);
      }
    }
    function event(name, extra) {
      if (config.onEvent) config.onEvent(name, { link_session_id: sessionId, timestamp: new Date().toISOString(), ...extra });
    }
    async function succeed(outcome) {
      const open = dialog;
      const actions = open.querySelector(".actions");
      const note = open.querySelector(".standin-problem");
      for (const b of actions.querySelectorAll("button")) b.disabled = true;
      note.hidden = true;
      let completed;
      try {
        completed = await complete(config.token, outcome, sessionId);
      } catch (error) {
        // Stay open, as Link does when something fails mid-session: say what, let the user
        // choose another outcome.
        for (const b of actions.querySelectorAll("button")) b.disabled = false;
        note.textContent = error.message;
        note.hidden = false;
        return;
      }
      if (dialog !== open) return; // closed meanwhile (Escape): Link reported onExit already
      close();
      event("HANDOFF", {});
      config.onSuccess(completed.public_token, completed.metadata);
    }
    function exit(error) {
      close();
      if (error) event("ERROR", { error_code: error.error_code, error_type: error.error_type });
      event("EXIT", {});
      if (config.onExit) config.onExit(error, { status: error ? "requires_credentials" : null, link_session_id: sessionId, request_id: id("request"), institution: null });
    }
    function oauthRedirect() {
      close();
      event("OPEN_OAUTH", {});
      // What a bank's OAuth page does at the end: send the user back to the redirect URI.
      const back = new URL(window.location.href);
      back.search = `?oauth_state_id=${encodeURIComponent(id("oauth"))}`;
      window.location.assign(back.href);
    }

    return {
      open() {
        if (!config.token) throw new Error("Plaid Link stand-in: no token");
        close();
        dialog = document.createElement("div");
        dialog.className = "standin-link";
        dialog.setAttribute("role", "dialog");
        dialog.setAttribute("aria-modal", "true");
        dialog.setAttribute("aria-labelledby", "standin-link-title");
        const title = document.createElement("h2");
        title.id = "standin-link-title";
        title.textContent = "Plaid Link stand-in (this is not Plaid)";
        const text = document.createElement("p");
        text.textContent = config.receivedRedirectUri
          ? "Resumed after the bank's OAuth redirect, with the same link token."
          : "No bank is contacted. Choose the outcome Link should report to the page.";
        const problem = document.createElement("p");
        problem.className = "standin-problem";
        problem.setAttribute("role", "alert");
        problem.hidden = true;
        const actions = document.createElement("div");
        actions.className = "actions";
        const first = button("Link an account (onSuccess)", () => succeed("success"));
        actions.append(first, button("Link an account with an expired public token (onSuccess)", () => succeed("expired_public_token")));
        if (!config.receivedRedirectUri) actions.append(button("Go through a bank's OAuth page", oauthRedirect));
        actions.append(
          button("Fail with INVALID_LINK_TOKEN (onExit)", () =>
            exit({
              error_type: "INVALID_INPUT",
              error_code: "INVALID_LINK_TOKEN",
              error_message: "link token has expired",
              display_message: null,
            }),
          ),
          button("Close (onExit without error)", () => exit(null)),
        );
        dialog.append(title, text, problem, actions);
        document.body.append(dialog);
        document.addEventListener("keydown", onKey, true);
        event("OPEN", {});
        first.focus();
      },
      exit() {
        exit(null);
      },
      destroy: close,
    };
  }

  window.Plaid = { create };
})();
