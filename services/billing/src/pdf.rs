//! An issued invoice or credit note as a PDF a trainer can send: issuer and
//! tax numbers, the client billed (the snapshot taken at issue), lines, each
//! tax, the totals, the due date and how to pay, in English or French.
//! Pure: the use case gathers the document; this lays it out on US Letter
//! pages in the PDF standard fonts (Helvetica), so nothing is embedded and
//! every reader shows it.
//!
//! The standard fonts speak WinAnsi (Windows-1252): every letter of English
//! and French and most of Western Europe prints as itself; a character
//! outside it (Cyrillic, CJK, emoji) prints as "?". Control characters
//! never reach the page.

use chrono::{Datelike as _, NaiveDate};
use pdf_writer::{Content, Finish as _, Name, Pdf, Rect, Ref, Str, TextStr};
use rust_decimal::Decimal;

/// US Letter, in points.
const PAGE_WIDTH: f32 = 612.0;
const PAGE_HEIGHT: f32 = 792.0;
const MARGIN: f32 = 50.0;
/// The lowest baseline of body text; the footer sits below it.
const BODY_BOTTOM: f32 = 80.0;
const BODY_SIZE: f32 = 10.0;
const LEADING: f32 = 14.0;
/// Characters of a description or a note per printed line (Helvetica at
/// 10 pt averages about 5 pt a character; the column is 290 pt wide).
const WRAP_COLUMNS: usize = 56;
const REGULAR: Name<'static> = Name(b"F1");
const BOLD: Name<'static> = Name(b"F2");

/// The language a document prints in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Language {
    /// English.
    English,
    /// French (clients in Quebec).
    French,
}

impl Language {
    /// The stored form.
    pub(crate) fn code(self) -> &'static str {
        match self {
            Language::English => "en",
            Language::French => "fr",
        }
    }

    /// The stored form read back.
    pub(crate) fn from_code(code: &str) -> Option<Self> {
        match code {
            "en" => Some(Language::English),
            "fr" => Some(Language::French),
            _ => None,
        }
    }
}

/// One line as billed.
#[derive(Debug, Clone)]
pub(crate) struct PdfLine {
    pub description: String,
    pub quantity: Decimal,
    pub unit_price: Decimal,
    pub amount: Decimal,
}

/// One tax line.
#[derive(Debug, Clone)]
pub(crate) struct PdfTax {
    /// "ON", "QC", …
    pub province: String,
    /// "GST", "HST", "QST", "PST" or "RST".
    pub kind: String,
    pub percent: Decimal,
    pub amount: Decimal,
}

/// Everything a document prints.
#[derive(Debug, Clone)]
pub(crate) struct PdfDocument {
    pub language: Language,
    /// A credit note rather than an invoice.
    pub credit_note: bool,
    pub number: String,
    /// For a credit note, the number of the invoice it corrects.
    pub corrects: Option<String>,
    pub date: NaiveDate,
    /// None for a credit note.
    pub due_date: Option<NaiveDate>,
    pub issuer_name: String,
    pub registered: bool,
    pub gst_hst_number: String,
    pub qst_number: String,
    /// The client billed, as lines (name, street, city, email); empty when
    /// the invoice predates snapshots.
    pub bill_to: Vec<String>,
    pub lines: Vec<PdfLine>,
    pub subtotal: Decimal,
    pub taxes: Vec<PdfTax>,
    pub total: Decimal,
    pub amount_paid: Decimal,
    pub balance_due: Decimal,
    pub notes: String,
    /// Printed across the top when the document was voided.
    pub void: bool,
}

/// The words a document prints, per language.
struct Words {
    invoice: &'static str,
    credit_note: &'static str,
    number: &'static str,
    date: &'static str,
    due_date: &'static str,
    corrects: &'static str,
    bill_to: &'static str,
    description: &'static str,
    quantity: &'static str,
    unit_price: &'static str,
    amount: &'static str,
    subtotal: &'static str,
    total: &'static str,
    amount_paid: &'static str,
    balance_due: &'static str,
    gst_hst_number: &'static str,
    qst_number: &'static str,
    small_supplier: &'static str,
    notes: &'static str,
    payment: &'static str,
    void: &'static str,
    page: &'static str,
    of: &'static str,
}

const ENGLISH: Words = Words {
    invoice: "INVOICE",
    credit_note: "CREDIT NOTE",
    number: "No.",
    date: "Date",
    due_date: "Due date",
    corrects: "Corrects invoice",
    bill_to: "Bill to",
    description: "Description",
    quantity: "Qty",
    unit_price: "Unit price",
    amount: "Amount",
    subtotal: "Subtotal",
    total: "Total",
    amount_paid: "Amount paid",
    balance_due: "Balance due",
    gst_hst_number: "GST/HST no.",
    qst_number: "QST no.",
    small_supplier: "Small supplier, not registered for GST/HST: no sales tax is charged.",
    notes: "Notes",
    payment: "Payment",
    void: "VOID",
    page: "Page",
    of: "of",
};

const FRENCH: Words = Words {
    invoice: "FACTURE",
    credit_note: "NOTE DE CRÉDIT",
    number: "No",
    date: "Date",
    due_date: "Échéance",
    corrects: "Corrige la facture",
    bill_to: "Facturer à",
    description: "Description",
    quantity: "Qté",
    unit_price: "Prix unitaire",
    amount: "Montant",
    subtotal: "Sous-total",
    total: "Total",
    amount_paid: "Montant payé",
    balance_due: "Solde dû",
    gst_hst_number: "No de TPS/TVH",
    qst_number: "No de TVQ",
    small_supplier: "Petit fournisseur non inscrit aux fins de la TPS/TVH : aucune taxe n'est facturée.",
    notes: "Notes",
    payment: "Paiement",
    void: "ANNULÉE",
    page: "Page",
    of: "de",
};

fn words(language: Language) -> &'static Words {
    match language {
        Language::English => &ENGLISH,
        Language::French => &FRENCH,
    }
}

/// A tax's printed name: its French name in French (TPS, TVH, TVQ, TVP,
/// TVD), with its province and rate.
pub(crate) fn tax_label(tax: &PdfTax, language: Language) -> String {
    let name = match (language, tax.kind.as_str()) {
        (Language::French, "GST") => "TPS",
        (Language::French, "HST") => "TVH",
        (Language::French, "QST") => "TVQ",
        (Language::French, "PST") => "TVP",
        (Language::French, "RST") => "TVD",
        (_, kind) => kind,
    };
    let percent = tax.percent.normalize().to_string();
    match language {
        Language::English => format!("{name} ({}) {percent}%", tax.province),
        Language::French => format!("{name} ({}) {} %", tax.province, percent.replace('.', ",")),
    }
}

/// An amount in Canadian dollars as each language writes it: "$1,234.56",
/// "1 234,56 $" (a no-break space between groups).
pub(crate) fn money(amount: Decimal, language: Language) -> String {
    let fixed = format!("{:.2}", amount.abs().round_dp(2));
    let (whole, cents) = fixed.split_once('.').unwrap_or((fixed.as_str(), "00"));
    let separator = match language {
        Language::English => ',',
        Language::French => '\u{a0}',
    };
    let mut grouped = String::new();
    for (index, digit) in whole.chars().enumerate() {
        if index > 0 && (whole.len() - index) % 3 == 0 {
            grouped.push(separator);
        }
        grouped.push(digit);
    }
    let sign = if amount.is_sign_negative() && !amount.is_zero() {
        "-"
    } else {
        ""
    };
    match language {
        Language::English => format!("{sign}${grouped}.{cents}"),
        Language::French => format!("{sign}{grouped},{cents}\u{a0}$"),
    }
}

/// A date as each language writes it: "March 5, 2027", "5 mars 2027".
pub(crate) fn long_date(date: NaiveDate, language: Language) -> String {
    let month = |french| fitflow_api::prose::month_name(date.month0(), french);
    match language {
        Language::English => format!("{} {}, {}", month(false), date.day(), date.year()),
        Language::French => {
            let day = if date.day() == 1 {
                "1er".to_owned()
            } else {
                date.day().to_string()
            };
            format!("{day} {} {}", month(true), date.year())
        }
    }
}

/// How to pay, as one paragraph.
fn payment_paragraph(document: &PdfDocument) -> String {
    let due = document
        .due_date
        .map(|date| long_date(date, document.language))
        .unwrap_or_default();
    match document.language {
        Language::English => format!(
            "Please pay {} by {due} by Interac e-Transfer or cheque payable to {}, quoting invoice {}.",
            money(document.balance_due, Language::English),
            document.issuer_name,
            document.number
        ),
        Language::French => format!(
            "Veuillez payer {} au plus tard le {due} par virement Interac ou par chèque à l'ordre de {}, en indiquant la facture {}.",
            money(document.balance_due, Language::French),
            document.issuer_name,
            document.number
        ),
    }
}

/// `text` in WinAnsi bytes: control characters become spaces, characters
/// the standard fonts lack become "?".
pub(crate) fn winansi(text: &str) -> Vec<u8> {
    text.chars()
        .map(|character| match character {
            ' '..='~' => character as u8,
            '\u{a0}'..='\u{ff}' => u8::try_from(u32::from(character)).unwrap_or(b'?'),
            '€' => 0x80,
            '‚' => 0x82,
            '„' => 0x84,
            '…' => 0x85,
            'Œ' => 0x8c,
            '‘' => 0x91,
            '’' => 0x92,
            '“' => 0x93,
            '”' => 0x94,
            '•' => 0x95,
            '–' => 0x96,
            '—' => 0x97,
            'œ' => 0x9c,
            'Ÿ' => 0x9f,
            '\u{202f}' | '\u{2009}' => 0xa0,
            character if character.is_control() => b' ',
            _ => b'?',
        })
        .collect()
}

/// The width of `text` at `size` in Helvetica, for right alignment (digits,
/// separators and signs exactly; other characters as a digit).
fn width(text: &str, size: f32) -> f32 {
    let units: u32 = text
        .chars()
        .map(|character| match character {
            ' ' | ',' | '.' | '\u{a0}' => 278,
            '-' => 333,
            '%' => 889,
            _ => 556,
        })
        .sum();
    units as f32 * size / 1000.0
}

/// `text` cut into lines of at most `columns` characters, at spaces where
/// it can be; its own line breaks kept.
pub(crate) fn wrap(text: &str, columns: usize) -> Vec<String> {
    let mut lines = Vec::new();
    for paragraph in text.split('\n') {
        let mut line = String::new();
        for word in paragraph
            .split([' ', '\t', '\r'])
            .filter(|word| !word.is_empty())
        {
            let mut word: Vec<char> = word.chars().collect();
            // A word longer than a line is cut.
            while word.len() > columns {
                if !line.is_empty() {
                    lines.push(std::mem::take(&mut line));
                }
                lines.push(word.drain(..columns).collect());
            }
            let word: String = word.into_iter().collect();
            if line.is_empty() {
                line = word;
            } else if line.chars().count() + 1 + word.chars().count() <= columns {
                line.push(' ');
                line.push_str(&word);
            } else {
                lines.push(std::mem::replace(&mut line, word));
            }
        }
        lines.push(line);
    }
    while lines.last().is_some_and(String::is_empty) {
        lines.pop();
    }
    lines
}

/// Pages being written, top to bottom.
struct Layout {
    pages: Vec<Content>,
    y: f32,
    /// Printed atop every page after the first.
    running_head: String,
}

impl Layout {
    fn new(running_head: String) -> Self {
        Self {
            pages: vec![Content::new()],
            y: PAGE_HEIGHT - MARGIN,
            running_head,
        }
    }

    fn page(&mut self) -> &mut Content {
        if self.pages.is_empty() {
            self.pages.push(Content::new());
        }
        let last = self.pages.len() - 1;
        &mut self.pages[last]
    }

    /// Starts a new page unless `height` more points fit on this one.
    fn room_for(&mut self, height: f32) {
        if self.y - height < BODY_BOTTOM {
            self.pages.push(Content::new());
            self.y = PAGE_HEIGHT - MARGIN;
            let head = self.running_head.clone();
            self.text(MARGIN, 9.0, false, &head);
            self.y -= LEADING * 1.5;
        }
    }

    /// `text` with its left edge at `x` on the current line.
    fn text(&mut self, x: f32, size: f32, bold: bool, text: &str) {
        let y = self.y;
        let bytes = winansi(text);
        self.page()
            .begin_text()
            .set_font(if bold { BOLD } else { REGULAR }, size)
            .next_line(x, y)
            .show(Str(&bytes))
            .end_text();
    }

    /// `text` with its right edge at `right` on the current line.
    fn right(&mut self, right: f32, size: f32, bold: bool, text: &str) {
        self.text(right - width(text, size), size, bold, text);
    }

    /// A thin rule across the body at the current line.
    fn rule(&mut self) {
        let y = self.y + LEADING * 0.6;
        self.page()
            .set_line_width(0.5)
            .move_to(MARGIN, y)
            .line_to(PAGE_WIDTH - MARGIN, y)
            .stroke();
    }

    fn down(&mut self, lines: f32) {
        self.y -= LEADING * lines;
    }
}

/// Columns of the lines table: right edges of quantity, unit price and
/// amount.
const QUANTITY_RIGHT: f32 = 400.0;
const UNIT_PRICE_RIGHT: f32 = 480.0;
const AMOUNT_RIGHT: f32 = PAGE_WIDTH - MARGIN;
/// Where the totals' labels start.
const TOTALS_LEFT: f32 = 360.0;

fn table_head(layout: &mut Layout, words: &Words) {
    layout.room_for(LEADING * 3.0);
    layout.text(MARGIN, BODY_SIZE, true, words.description);
    layout.right(QUANTITY_RIGHT, BODY_SIZE, true, words.quantity);
    layout.right(UNIT_PRICE_RIGHT, BODY_SIZE, true, words.unit_price);
    layout.right(AMOUNT_RIGHT, BODY_SIZE, true, words.amount);
    layout.down(0.4);
    layout.rule();
    layout.down(1.0);
}

fn quantity(value: Decimal, language: Language) -> String {
    let text = value.normalize().to_string();
    match language {
        Language::English => text,
        Language::French => text.replace('.', ","),
    }
}

/// The document as PDF bytes.
pub(crate) fn render(document: &PdfDocument) -> Vec<u8> {
    let words = words(document.language);
    let language = document.language;
    let title = if document.credit_note {
        words.credit_note
    } else {
        words.invoice
    };
    let mut layout = Layout::new(format!(
        "{} — {title} {} {}",
        document.issuer_name, words.number, document.number
    ));

    // Issuer and title.
    layout.text(MARGIN, 16.0, true, &document.issuer_name);
    layout.right(AMOUNT_RIGHT, 16.0, true, title);
    layout.down(1.6);
    if document.registered {
        if !document.gst_hst_number.is_empty() {
            let line = format!("{} {}", words.gst_hst_number, document.gst_hst_number);
            layout.text(MARGIN, 9.0, false, &line);
        }
        if !document.qst_number.is_empty() {
            layout.down(1.0);
            let line = format!("{} {}", words.qst_number, document.qst_number);
            layout.text(MARGIN, 9.0, false, &line);
        }
    }
    if document.void {
        layout.right(AMOUNT_RIGHT, 14.0, true, words.void);
    }
    layout.down(2.0);

    // Bill to, beside the number and dates.
    let mut facts = vec![
        (words.number.to_owned(), document.number.clone()),
        (words.date.to_owned(), long_date(document.date, language)),
    ];
    if let Some(due) = document.due_date {
        facts.push((words.due_date.to_owned(), long_date(due, language)));
    }
    if let Some(corrects) = &document.corrects {
        facts.push((words.corrects.to_owned(), corrects.clone()));
    }
    let block_top = layout.y;
    if !document.bill_to.is_empty() {
        layout.text(MARGIN, BODY_SIZE, true, words.bill_to);
        for line in &document.bill_to {
            layout.down(1.0);
            layout.text(MARGIN, BODY_SIZE, false, line);
        }
    }
    let block_bottom = layout.y;
    layout.y = block_top;
    for (label, value) in &facts {
        layout.text(TOTALS_LEFT, BODY_SIZE, true, label);
        layout.right(AMOUNT_RIGHT, BODY_SIZE, false, value);
        layout.down(1.0);
    }
    layout.y = layout.y.min(block_bottom - LEADING);
    layout.down(1.5);

    // Lines.
    table_head(&mut layout, words);
    for line in &document.lines {
        let description = wrap(&line.description, WRAP_COLUMNS);
        let height = LEADING * description.len().max(1) as f32;
        if layout.y - height < BODY_BOTTOM {
            layout.room_for(height + LEADING * 3.0);
            table_head(&mut layout, words);
        }
        layout.right(
            QUANTITY_RIGHT,
            BODY_SIZE,
            false,
            &quantity(line.quantity, language),
        );
        layout.right(
            UNIT_PRICE_RIGHT,
            BODY_SIZE,
            false,
            &money(line.unit_price, language),
        );
        layout.right(
            AMOUNT_RIGHT,
            BODY_SIZE,
            false,
            &money(line.amount, language),
        );
        for (index, text) in description.iter().enumerate() {
            if index > 0 {
                layout.down(1.0);
            }
            layout.text(MARGIN, BODY_SIZE, false, text);
        }
        layout.down(1.0);
    }
    layout.down(0.4);
    layout.rule();
    layout.down(0.6);

    // Totals: subtotal, each tax, total, paid, balance.
    let mut totals = vec![(words.subtotal.to_owned(), document.subtotal, false)];
    for tax in &document.taxes {
        totals.push((tax_label(tax, language), tax.amount, false));
    }
    totals.push((words.total.to_owned(), document.total, true));
    if !document.credit_note {
        totals.push((words.amount_paid.to_owned(), document.amount_paid, false));
        totals.push((words.balance_due.to_owned(), document.balance_due, true));
    }
    layout.room_for(LEADING * totals.len() as f32);
    for (label, amount, bold) in &totals {
        layout.text(TOTALS_LEFT, BODY_SIZE, *bold, label);
        layout.right(AMOUNT_RIGHT, BODY_SIZE, *bold, &money(*amount, language));
        layout.down(1.0);
    }
    if !document.registered {
        layout.down(0.5);
        layout.room_for(LEADING);
        layout.text(MARGIN, 9.0, false, words.small_supplier);
        layout.down(1.0);
    }

    // Payment and notes.
    let mut paragraphs = Vec::new();
    if !document.credit_note && !document.void && document.balance_due > Decimal::ZERO {
        paragraphs.push((words.payment, payment_paragraph(document)));
    }
    if !document.notes.is_empty() {
        paragraphs.push((words.notes, document.notes.clone()));
    }
    for (heading, text) in paragraphs {
        layout.down(1.0);
        layout.room_for(LEADING * 2.0);
        layout.text(MARGIN, BODY_SIZE, true, heading);
        for line in wrap(&text, WRAP_COLUMNS + 30) {
            layout.down(1.0);
            layout.room_for(LEADING);
            layout.text(MARGIN, 9.0, false, &line);
        }
        layout.down(1.0);
    }

    // Footers: "Page n of m".
    let count = layout.pages.len();
    for (index, page) in layout.pages.iter_mut().enumerate() {
        let footer = format!("{} {} {} {count}", words.page, index + 1, words.of);
        let bytes = winansi(&footer);
        page.begin_text()
            .set_font(REGULAR, 8.0)
            .next_line(AMOUNT_RIGHT - width(&footer, 8.0), MARGIN - 10.0)
            .show(Str(&bytes))
            .end_text();
    }
    write_pdf(
        layout.pages,
        &format!("{title} {}", document.number),
        &document.issuer_name,
    )
}

/// The pages as one PDF file, with its title and author.
fn write_pdf(pages: Vec<Content>, title: &str, author: &str) -> Vec<u8> {
    let mut pdf = Pdf::new();
    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let regular = Ref::new(3);
    let bold = Ref::new(4);
    let info = Ref::new(5);
    let first_page = 6;
    let page_ref = |index: usize, offset: i32| {
        Ref::new(first_page + 2 * i32::try_from(index).unwrap_or(i32::MAX / 4) + offset)
    };
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree)
        .kids((0..pages.len()).map(|index| page_ref(index, 0)))
        .count(i32::try_from(pages.len()).unwrap_or(i32::MAX));
    pdf.type1_font(regular)
        .base_font(Name(b"Helvetica"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.type1_font(bold)
        .base_font(Name(b"Helvetica-Bold"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));
    for (index, content) in pages.into_iter().enumerate() {
        let (page_id, content_id) = (page_ref(index, 0), page_ref(index, 1));
        let mut page = pdf.page(page_id);
        page.media_box(Rect::new(0.0, 0.0, PAGE_WIDTH, PAGE_HEIGHT))
            .parent(tree)
            .contents(content_id);
        page.resources()
            .fonts()
            .pair(REGULAR, regular)
            .pair(BOLD, bold);
        page.finish();
        pdf.stream(content_id, &content.finish());
    }
    pdf.document_info(info)
        .title(TextStr(title))
        .author(TextStr(author))
        .producer(TextStr("FitFlow"));
    pdf.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(value: &str) -> Decimal {
        value.parse().unwrap()
    }

    fn document(language: Language) -> PdfDocument {
        PdfDocument {
            language,
            credit_note: false,
            number: "2027-000042".into(),
            corrects: None,
            date: NaiveDate::from_ymd_opt(2027, 3, 1).unwrap(),
            due_date: NaiveDate::from_ymd_opt(2027, 3, 31),
            issuer_name: "Ana Fitness".into(),
            registered: true,
            gst_hst_number: "123456789RT0001".into(),
            qst_number: "1234567890TQ0001".into(),
            bill_to: vec!["Zoé Roy".into(), "1 rue Principale".into()],
            lines: vec![PdfLine {
                description: "Personal training".into(),
                quantity: d("1.00"),
                unit_price: d("33.33"),
                amount: d("33.33"),
            }],
            subtotal: d("33.33"),
            taxes: vec![
                PdfTax {
                    province: "QC".into(),
                    kind: "GST".into(),
                    percent: d("5.0000"),
                    amount: d("1.67"),
                },
                PdfTax {
                    province: "QC".into(),
                    kind: "QST".into(),
                    percent: d("9.9750"),
                    amount: d("3.32"),
                },
            ],
            total: d("38.32"),
            amount_paid: d("0.00"),
            balance_due: d("38.32"),
            notes: String::new(),
            void: false,
        }
    }

    #[test]
    fn amounts_are_written_as_each_language_writes_dollars() {
        assert_eq!(money(d("1234567.5"), Language::English), "$1,234,567.50");
        assert_eq!(money(d("-12.00"), Language::English), "-$12.00");
        assert_eq!(money(d("0.00"), Language::English), "$0.00");
        assert_eq!(money(d("999.99"), Language::English), "$999.99");
        assert_eq!(
            money(d("1234.56"), Language::French),
            "1\u{a0}234,56\u{a0}$"
        );
        assert_eq!(money(d("-0.10"), Language::French), "-0,10\u{a0}$");
    }

    #[test]
    fn taxes_are_named_in_the_documents_language_with_province_and_rate() {
        let qst = PdfTax {
            province: "QC".into(),
            kind: "QST".into(),
            percent: d("9.9750"),
            amount: d("3.32"),
        };
        assert_eq!(tax_label(&qst, Language::English), "QST (QC) 9.975%");
        assert_eq!(tax_label(&qst, Language::French), "TVQ (QC) 9,975 %");
        let hst = PdfTax {
            kind: "HST".into(),
            province: "ON".into(),
            percent: d("13.0000"),
            ..qst
        };
        assert_eq!(tax_label(&hst, Language::French), "TVH (ON) 13 %");
    }

    #[test]
    fn dates_are_spelled_out_and_the_first_of_a_month_is_premier_in_french() {
        let first = NaiveDate::from_ymd_opt(2027, 8, 1).unwrap();
        assert_eq!(long_date(first, Language::English), "August 1, 2027");
        assert_eq!(long_date(first, Language::French), "1er août 2027");
    }

    #[test]
    fn text_outside_winansi_prints_as_a_question_mark_and_controls_as_spaces() {
        assert_eq!(winansi("Zoé"), b"Zo\xe9");
        assert_eq!(winansi("a\u{0}b\u{1b}c"), b"a b c");
        assert_eq!(winansi("李 🏋"), b"? ?");
        assert_eq!(winansi("l’été — 5 €"), b"l\x92\xe9t\xe9 \x97 5 \x80");
    }

    #[test]
    fn long_descriptions_wrap_at_spaces_and_overlong_words_are_cut() {
        assert_eq!(wrap("one two three", 7), ["one two", "three"]);
        assert_eq!(wrap("abcdefghij", 4), ["abcd", "efgh", "ij"]);
        assert_eq!(wrap("first\n\nthird\n", 10), ["first", "", "third"]);
        assert!(wrap("", 10).is_empty());
    }

    #[test]
    fn a_document_renders_as_a_pdf_with_its_fonts_and_one_page() {
        let bytes = render(&document(Language::French));
        assert!(bytes.starts_with(b"%PDF-"));
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("/WinAnsiEncoding"));
        assert!(text.contains("/Count 1"));
        // Uncompressed content: the French words are there in WinAnsi.
        assert!(bytes.windows(8).any(|window| window == b"Sous-tot"));
    }

    #[test]
    fn two_hundred_long_lines_flow_onto_more_pages_each_with_a_footer() {
        let mut many = document(Language::English);
        many.lines = (0..200)
            .map(|index| PdfLine {
                description: format!("Session {index} ").repeat(12),
                quantity: d("1"),
                unit_price: d("10.00"),
                amount: d("10.00"),
            })
            .collect();
        let bytes = render(&many);
        let text = String::from_utf8_lossy(&bytes);
        let pages = text.matches("/Type /Page\n").count() + text.matches("/Type /Page ").count();
        assert!(text.contains("Page 1 of "), "a footer on the first page");
        let count: usize = text
            .split("/Count ")
            .nth(1)
            .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|number| number.parse().ok())
            .unwrap();
        assert!(count > 5, "{count} pages ({pages} page objects)");
        assert!(text.contains(&format!("Page {count} of {count}")));
    }
}
