/** The console's shell: sign-in, the caller (viewer), navigation, and the page of the current path. */
import { useEffect, useMemo, useState } from "react";
import { ViewerDocument } from "./generated/graphql";
import { useQuery } from "./api/hooks";
import { adoptTokenFromAddress, clearToken, storeToken } from "./api/token";
import { ErrorBanner } from "./components/ErrorBanner";
import { SubscriptionCards } from "./components/SubscriptionCards";
import { LedgerTable } from "./components/LedgerTable";
import { AlertsList } from "./components/AlertsList";
import { SignIn } from "./pages/SignIn";
import { SubscriptionPage } from "./pages/SubscriptionPage";
import { AdminHome } from "./pages/AdminHome";
import { AdminStats } from "./pages/AdminStats";
import { navigate, usePath } from "./router";

export function App() {
  const [token, setToken] = useState(adoptTokenFromAddress);
  const [problem, setProblem] = useState<string>();
  if (!token) {
    return (
      <SignIn
        problem={problem}
        onToken={(t) => {
          storeToken(t);
          setProblem(undefined);
          setToken(t);
        }}
      />
    );
  }
  return (
    <SignedIn
      key={token}
      onSignOut={(why) => {
        clearToken();
        setProblem(why);
        setToken(null);
      }}
    />
  );
}

function SignedIn({ onSignOut }: { onSignOut: (why?: string) => void }) {
  const path = usePath();
  const { data, error, refetch } = useQuery(ViewerDocument, {});
  const types = useMemo(() => data?.creditTypes.map((t) => t.name) ?? [], [data]);

  // A bad or expired token: back to sign-in, saying why.
  const rejected = error?.code === "UNAUTHENTICATED" ? error.message : undefined;
  useEffect(() => {
    if (rejected) onSignOut(rejected);
  }, [rejected, onSignOut]);

  if (rejected) return null;
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
        <main>{error ? <ErrorBanner error={error} onRetry={() => void refetch()} /> : <p className="muted">Loading…</p>}</main>
      </div>
    );
  }
  const { viewer } = data;

  const link = (to: string, label: string) => (
    <a
      href={`/console${to}`}
      className={(to === "/" ? path === "/" : path.startsWith(to)) ? "active" : ""}
      onClick={(e) => {
        e.preventDefault();
        navigate(to);
      }}
    >
      {label}
    </a>
  );

  return (
    <div className="app">
      <header className="top">
        <span className="brand">graphql-credits</span>
        <nav>
          {link("/", viewer.isAdmin ? "Subscriptions" : "My subscriptions")}
          {viewer.isAdmin ? link("/ledger", "Ledger") : null}
          {viewer.isAdmin ? link("/stats", "Stats") : null}
          {viewer.isAdmin ? link("/alerts", "Alerts") : null}
        </nav>
        <span className="spacer" />
        <span className="who" data-testid="viewer">
          {viewer.id}
          {viewer.isAdmin ? <span className="tag admin">admin</span> : null}
        </span>
        <button type="button" className="link" onClick={() => onSignOut()}>
          Sign out
        </button>
      </header>
      <main>
        <Page path={path} isAdmin={viewer.isAdmin} types={types} own={viewer.subscriptions} />
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
          <h1>My subscriptions</h1>
        </header>
        <SubscriptionCards subscriptions={own} types={types} />
      </div>
    );
  }
  if (isAdmin && path === "/ledger") {
    return (
      <div>
        <header className="page-head">
          <h1>Ledger across subscriptions</h1>
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
          <h1>Alerts</h1>
        </header>
        <AlertsList />
      </div>
    );
  }
  return <p className="muted pad">Nothing here: {path}</p>;
}
