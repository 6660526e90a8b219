// Keeps the chat page alive through network drops when login is on (Chainlit 2.12's page).
//
// The page re-reads GET /user when the network flickers; any failure of that request counts as
// "signed out" (react-client `useUser` sets the user to null) and the page then navigates to
// /login (AppWrapper.tsx). During a drop that navigation fails too and leaves the browser's own
// offline error page, so the chat never comes back. Measured: 0.1 s after going offline.
// Here a failed /user or /auth/config request (no network, or a proxy's 502/503/504 while an
// instance restarts) waits and tries again, so the page only sees a real answer.
(() => {
  const send = window.fetch.bind(window);
  const HELD = ["/user", "/auth/config"];
  const GIVE_UP_MS = 120000; // a server gone for two minutes is an error the page may show
  const TRANSIENT = new Set([502, 503, 504]);

  const held = (input) => {
    const raw = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
    const url = new URL(raw, window.location.href);
    return url.origin === window.location.origin && HELD.some((path) => url.pathname.endsWith(path));
  };

  const pause = (ms) =>
    new Promise((resolve) => {
      if (!navigator.onLine) {
        window.addEventListener("online", () => resolve(), { once: true });
      } else {
        window.setTimeout(resolve, ms);
      }
    });

  window.fetch = async (input, init) => {
    if (!held(input) || (init && init.method && init.method.toUpperCase() !== "GET")) {
      return send(input, init);
    }
    const started = Date.now();
    for (let delay = 250; ; delay = Math.min(delay * 2, 4000)) {
      let response = null;
      try {
        response = await send(input, init);
      } catch (error) {
        if ((error && error.name === "AbortError") || Date.now() - started > GIVE_UP_MS) throw error;
      }
      if (response && (!TRANSIENT.has(response.status) || Date.now() - started > GIVE_UP_MS)) {
        return response;
      }
      await pause(delay);
    }
  };
})();
