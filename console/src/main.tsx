import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./App";
import { ErrorBoundary, PageProblem } from "./components/ErrorBoundary";
import "./styles.css";

// The last resort: a render error that nothing nearer caught says so, with a retry, rather than
// leaving the page blank (App.tsx catches a page's own errors under the console's header).
createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <ErrorBoundary fallback={(error, retry) => <main><PageProblem error={error} retry={retry} what="The console" /></main>}>
      <App />
    </ErrorBoundary>
  </StrictMode>,
);
