// A stand-in for Plaid Link (https://cdn.plaid.com/link/v2/stable/link-initialize.js). It is
// NOT Plaid: it talks to nobody, and only lets you play the outcomes real Link can have.
//
// The page loads it instead of Plaid's script when the service runs against the local Plaid
// stand-in (whose tokens real Link cannot open); the browser tests serve it in place of
// Plaid's CDN. Every `Plaid.create` call is recorded in `window.__plaidCalls`.
(function () {
  "use strict";
  const calls = (window.__plaidCalls = window.__plaidCalls || []);

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
    function succeed() {
      close();
      event("HANDOFF", {});
      config.onSuccess(id("public"), {
        institution: { name: "Stand-in Bank (not a real bank)", institution_id: "ins_standin" },
        accounts: [{ id: id("account"), name: "Stand-in Checking", mask: "0000", type: "depository", subtype: "checking" }],
        link_session_id: sessionId,
        transfer_status: null,
      });
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
        const actions = document.createElement("div");
        actions.className = "actions";
        const first = button("Link an account (onSuccess)", succeed);
        actions.append(first);
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
        dialog.append(title, text, actions);
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
