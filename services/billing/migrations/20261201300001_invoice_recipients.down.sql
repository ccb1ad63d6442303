DROP TABLE invoice_recipients;
