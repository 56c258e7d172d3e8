/**
 * The console's shell: sign-in, the caller (viewer), navigation, and the page of the current path.
 *
 * A session ends (back to sign-in, saying why) on Sign out, and on any UNAUTHENTICATED answer: an
 * HTTP request's (api/client.ts reports it to api/session.ts) or the live socket's 4401 close
 * (live/connection.ts). When the token says it expires, the server is asked again then, so an open
 * page does not outlive its token. A sign-in link opened in a tab already showing the console only
 * changes the fragment: it is adopted on `hashchange`.
 */
import { useCallback, useEffect, useMemo, useState } from "react";
import { SessionDocument, ViewerDocument } from "./generated/graphql";
import { useQuery } from "./api/hooks";
import { request } from "./api/client";
import { onUnauthenticated } from "./api/session";
import { adoptTokenFromAddress, clearToken, currentToken, normaliseToken, storeToken, takeTokenFromAddress, tokenExpiry } from "./api/token";
import { closeLive } from "./live/connection";
import { ErrorBanner } from "./components/ErrorBanner";
import { ErrorBoundary, PageProblem } from "./components/ErrorBoundary";
import { SubscriptionCards } from "./components/SubscriptionCards";
import { PageHeading } from "./components/PageHeading";
import { UserText } from "./components/UserText";
import { LedgerTable } from "./components/LedgerTable";
import { AlertsList } from "./components/AlertsList";
import { SignIn } from "./pages/SignIn";
import { SubscriptionPage } from "./pages/SubscriptionPage";
import { AdminHome } from "./pages/AdminHome";
import { AdminStats } from "./pages/AdminStats";
import { navigate, usePath } from "./router";

/** setTimeout's longest delay (about 24.8 days); a later expiry is waited for in steps. */
const MAX_TIMER_MS = 2_147_483_647;
/** A token past its expiry that the server still accepted (clocks differ) is asked about again after this. */
const RECHECK_MS = 15_000;

export function App() {
  const [token, setToken] = useState(adoptTokenFromAddress);
  const [problem, setProblem] = useState<string>();

  const signOut = useCallback((why?: string) => {
    clearToken();
    closeLive();
    setProblem(why);
    setToken(null);
  }, []);

  // Any UNAUTHENTICATED answer about the signed-in token ends the session with the server's reason.
  useEffect(
    () =>
      onUnauthenticated((reason, rejected) => {
        if (rejected !== null && rejected === currentToken()) signOut(reason);
      }),
    [signOut],
  );

  // A sign-in link (/console#token=…) opened in this tab: a fragment-only navigation, no reload.
  useEffect(() => {
    const adopt = () => {
      const before = currentToken();
      const adopted = takeTokenFromAddress();
      if (!adopted || adopted === before) return;
      closeLive();
      setProblem(undefined);
      setToken(adopted);
    };
    window.addEventListener("hashchange", adopt);
    return () => window.removeEventListener("hashchange", adopt);
  }, []);

  if (!token) {
    return (
      <SignIn
        problem={problem}
        onToken={(t) => {
          storeToken(t);
          setProblem(undefined);
          setToken(normaliseToken(t));
        }}
      />
    );
  }
  return <SignedIn key={token} token={token} onSignOut={signOut} />;
}

/** Asks the server again when the token says it expires: its UNAUTHENTICATED answer signs out. */
function useExpiryCheck(token: string): void {
  useEffect(() => {
    const expiry = tokenExpiry(token);
    if (expiry === undefined) return;
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const schedule = (ms: number) => {
      if (!stopped) timer = setTimeout(() => void check(), Math.min(Math.max(ms, 0), MAX_TIMER_MS));
    };
    const check = async () => {
      const wait = expiry - Date.now();
      if (wait > 0) return schedule(wait + 250);
      try {
        await request(SessionDocument, {});
      } catch {
        // UNAUTHENTICATED was reported (and signs out); another failure is asked again below.
      }
      schedule(RECHECK_MS);
    };
    // Already past it here (the server answers the viewer query anyway): ask later, not twice now.
    schedule(expiry > Date.now() ? expiry - Date.now() + 250 : RECHECK_MS);
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [token]);
}

function SignedIn({ token, onSignOut }: { token: string; onSignOut: (why?: string) => void }) {
  const path = usePath();
  const { data, error, refetch } = useQuery(ViewerDocument, {});
  const types = useMemo(() => data?.creditTypes.map((t) => t.name) ?? [], [data]);
  useExpiryCheck(token);

  // A bad or expired token: the session is ending (App signs out, with the server's reason).
  if (error?.code === "UNAUTHENTICATED") return null;
  if (!data) {
    // Not signed in yet (loading, or the server refused for another reason): the shell, and why.
    return (
      <div className="app">
        <header className="top">
          <span className="brand">graphql-credits</span>
          <span className="spacer" />
          <button type="button" className="link" onClick={() => onSignOut()}>
            Sign out
          </button>
        </header>
        <main>
          {error ? (
            <>
              <PageHeading title="The console could not load" />
              <ErrorBanner error={error} onRetry={() => void refetch()} />
            </>
          ) : (
            <p className="muted">Loading…</p>
          )}
        </main>
      </div>
    );
  }
  const { viewer } = data;

  const link = (to: string, label: string) => {
    const active = to === "/" ? path === "/" : path.startsWith(to);
    return (
      <a
        href={`/console${to}`}
        className={active ? "active" : ""}
        aria-current={active ? "page" : undefined}
        onClick={(e) => {
          e.preventDefault();
          navigate(to);
        }}
      >
        {label}
      </a>
    );
  };

  return (
    <div className="app">
      <header className="top">
        <span className="brand">graphql-credits</span>
        <nav aria-label="Console">
          {link("/", viewer.isAdmin ? "Subscriptions" : "My subscriptions")}
          {viewer.isAdmin ? link("/ledger", "Ledger") : null}
          {viewer.isAdmin ? link("/stats", "Stats") : null}
          {viewer.isAdmin ? link("/alerts", "Alerts") : null}
        </nav>
        <span className="spacer" />
        <span className="who" data-testid="viewer">
          <UserText>{viewer.id}</UserText>
          {viewer.isAdmin ? <span className="tag admin">admin</span> : null}
        </span>
        <button type="button" className="link" onClick={() => onSignOut()}>
          Sign out
        </button>
      </header>
      <main>
        {/* A page that cannot be drawn says why, under the header (whose navigation still works); another page starts afresh. */}
        <ErrorBoundary resetKey={path} fallback={(error, retry) => <PageProblem error={error} retry={retry} />}>
          <Page path={path} isAdmin={viewer.isAdmin} types={types} own={viewer.subscriptions} />
        </ErrorBoundary>
      </main>
    </div>
  );
}

function Page({ path, isAdmin, types, own }: { path: string; isAdmin: boolean; types: readonly string[]; own: Parameters<typeof SubscriptionCards>[0]["subscriptions"] }) {
  const match = /^\/subscriptions\/([^/]+)$/.exec(path);
  if (match) return <SubscriptionPage key={match[1]} id={decodeURIComponent(match[1])} isAdmin={isAdmin} types={types} />;
  if (path === "/") {
    if (isAdmin) return <AdminHome types={types} />;
    return (
      <div>
        <header className="page-head">
          <PageHeading title="My subscriptions" />
        </header>
        <SubscriptionCards subscriptions={own} types={types} />
      </div>
    );
  }
  if (isAdmin && path === "/ledger") {
    return (
      <div>
        <header className="page-head">
          <PageHeading title="Ledger across subscriptions" />
        </header>
        <LedgerTable types={types} />
      </div>
    );
  }
  if (isAdmin && path === "/stats") return <AdminStats types={types} />;
  if (isAdmin && path === "/alerts") {
    return (
      <div>
        <header className="page-head">
          <PageHeading title="Alerts" />
        </header>
        <AlertsList />
      </div>
    );
  }
  return (
    <div>
      <header className="page-head">
        <PageHeading title="Page not found" />
      </header>
      <p className="muted">
        Nothing here: <UserText>{path}</UserText>
      </p>
    </div>
  );
}
