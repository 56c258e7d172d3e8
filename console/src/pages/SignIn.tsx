/** Sign-in: paste a token (or open /console#token=<JWT>, which App adopts before this page shows). */
import { useState, type FormEvent } from "react";

export function SignIn({ onToken, problem }: { onToken: (token: string) => void; problem?: string }) {
  const [token, setToken] = useState("");
  function submit(event: FormEvent) {
    event.preventDefault();
    if (token.trim()) onToken(token.trim());
  }
  return (
    <form className="panel signin" onSubmit={submit} data-testid="signin">
      <h1>graphql-credits console</h1>
      <p>Paste a token (JWT) to sign in. It is kept in this tab's session storage only.</p>
      {problem ? (
        <div className="error" role="alert">
          {problem}
        </div>
      ) : null}
      <textarea rows={4} value={token} onChange={(e) => setToken(e.target.value)} placeholder="eyJhbGciOi…" spellCheck={false} data-testid="token-input" />
      <button type="submit" className="primary" disabled={!token.trim()}>
        Sign in
      </button>
      <p className="muted small">
        In development mode the server's start banner prints console links that sign in the demo user and admin.
      </p>
    </form>
  );
}
