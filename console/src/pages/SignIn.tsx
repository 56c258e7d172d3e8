/**
 * Sign-in: paste a token (or open /console#token=<JWT>, which App adopts before this page shows, or
 * on `hashchange` in a tab already showing it). The token field is labelled and has the focus on
 * arrival; after a refused or expired token, the server's reason is announced above it. Enter in it
 * signs in (a token is one line: there is nothing to break). Enter (or Sign in) with the field empty
 * or blank says to paste a token, and leaves the focus in the field.
 */
import { useEffect, useRef, useState, type FormEvent, type KeyboardEvent } from "react";
import { pageTitle } from "../components/PageHeading";

export function SignIn({ onToken, problem }: { onToken: (token: string) => void; problem?: string }) {
  const [token, setToken] = useState("");
  // Submitted with nothing in the field: said so, until something is typed.
  const [empty, setEmpty] = useState(false);
  const field = useRef<HTMLTextAreaElement>(null);
  useEffect(() => {
    document.title = pageTitle("Sign in");
  }, []);
  function submit(event: FormEvent) {
    event.preventDefault();
    if (token.trim()) return onToken(token.trim());
    setEmpty(true);
    field.current?.focus();
  }
  const describedBy = ["signin-help", ...(problem ? ["signin-problem"] : []), ...(empty ? ["signin-empty"] : [])].join(" ");
  function enter(event: KeyboardEvent<HTMLTextAreaElement>) {
    if (event.key !== "Enter" || event.shiftKey || event.nativeEvent.isComposing) return;
    event.preventDefault();
    event.currentTarget.form?.requestSubmit();
  }
  return (
    <main>
      <form className="panel signin" onSubmit={submit} data-testid="signin" aria-labelledby="signin-title">
        <h1 id="signin-title">graphql-credits console</h1>
        <p id="signin-help">Paste a token (JWT) to sign in. It is kept in this tab's session storage only.</p>
        {problem ? (
          <div className="error" role="alert" id="signin-problem" data-testid="signin-problem">
            {problem}
          </div>
        ) : null}
        {empty ? (
          <div className="error" role="alert" id="signin-empty" data-testid="signin-empty">
            Paste a token to sign in: the field is empty.
          </div>
        ) : null}
        <label htmlFor="signin-token" className="block">
          Token (JWT)
          <textarea
            id="signin-token"
            rows={4}
            ref={field}
            value={token}
            onChange={(e) => (setToken(e.target.value), setEmpty(false))}
            onKeyDown={enter}
            placeholder="eyJhbGciOi…"
            spellCheck={false}
            autoComplete="off"
            autoFocus
            aria-describedby={describedBy}
            aria-invalid={empty || undefined}
            data-testid="token-input"
          />
        </label>
        <button type="submit" className="primary">
          Sign in
        </button>
        <p className="muted small">
          In development mode the server's start banner prints console links that sign in the demo user and admin.
        </p>
      </form>
    </main>
  );
}
