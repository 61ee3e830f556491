"""The HTTP gateway: uploads, job status, SSE progress, results. No model code here."""
