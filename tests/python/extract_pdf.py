"""Prints what pypdf reads from a PDF file as JSON: its page count, its
title and the text of each page. Used by tests/tests/e2e/billing_pdf.rs."""

import json
import sys

from pypdf import PdfReader

reader = PdfReader(sys.argv[1], strict=True)
print(
    json.dumps(
        {
            "pages": len(reader.pages),
            "title": (reader.metadata or {}).get("/Title", ""),
            "text": [page.extract_text() for page in reader.pages],
        }
    )
)
