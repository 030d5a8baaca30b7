"""The stylesheet of the printed batch record (services/record_pdf.py)."""

CSS = """
@page { size: A4 portrait; margin: 20mm 13mm 15mm; font: 7.5pt "DejaVu Sans", sans-serif;
  @top-center { content: element(running); width: 100%; vertical-align: bottom;
    padding-bottom: 4mm; }
  @bottom-left { content: element(printed); vertical-align: top; }
  @bottom-right { content: "page " counter(page) " of " counter(pages); vertical-align: top;
    white-space: nowrap; } }
html, body { margin: 0; padding: 0; }
body { font: 8pt/1.25 "DejaVu Sans", sans-serif; }
.running { position: running(running); border-bottom: 0.6pt solid #333; padding-bottom: 2pt; }
.running td { padding: 0; border: 0; } .running .r { text-align: right; }
.printed { position: running(printed); font-size: 7pt; color: #444; }
h1 { font-size: 15pt; margin: 0 0 1pt; } .subtitle { font-size: 9pt; margin: 0 0 6pt; }
h2 { font-size: 11pt; margin: 12pt 0 3pt; border-bottom: 1pt solid #333; }
h3 { font-size: 9.5pt; margin: 0; } h4 { font-size: 8.5pt; margin: 6pt 0 2pt; }
h2, h4, h2 + p, .step-head { break-after: avoid; } tr, .entry { break-inside: avoid; }
table { width: 100%; border-collapse: collapse; } thead { display: table-header-group; }
th, td { padding: 1.6pt 3pt; vertical-align: top; text-align: left; overflow-wrap: anywhere; }
table.header th { width: 19%; background: #f0f0f0; font-weight: normal; overflow-wrap: normal; }
table.header td { width: 31%; } table.header th, table.header td { border: 0.5pt solid #bbb; }
.banner { margin: 6pt 0 3pt; padding: 3pt 5pt; font-weight: bold; border: 1pt solid; }
.banner.good { color: #14532d; background: #eaf6ec; }
.banner.bad { color: #b42318; background: #fdecea; }
ul.summary { margin: 2pt 0 0; padding-left: 12pt; } section.step { margin-top: 8pt; }
.step-head { background: #e8ecf1; border-left: 2.5pt solid #38506b; padding: 2.5pt 4pt; }
.step-head .no { color: #38506b; } .meta { margin: 1pt 0 0; color: #333; font-size: 7.5pt; }
.sid { font: 7.5pt "DejaVu Sans Mono", monospace; color: #555; margin-left: 4pt; }
.status { float: right; font-size: 7.5pt; font-weight: bold; padding: 0 3pt; }
.st-done, .ok { color: #14532d; } .st-wait { color: #b42318; } .st-todo, .muted { color: #555; }
.entry { margin: 3pt 0 0; } .entry-head { margin: 0 0 1.5pt; } table.values { margin-top: 2pt; }
table.values th, table.list th { background: #f2f2f2; border-bottom: 0.6pt solid #888; }
table.values td, table.list td { border-bottom: 0.4pt solid #ccc; } th { font-size: 7.5pt; }
table.series th { font-size: 7pt; overflow-wrap: normal; } th .sub { font-weight: normal; }
.c-name { width: 22%; } .c-val, .c-out, .c-rng { width: 10%; } .c-unit { width: 11%; }
.c-rec { width: 6%; } .c-by { width: 16%; } .c-eq { width: 15%; } .c-step { width: 28%; }
.c-kind { width: 12%; } .c-sstep { width: 24%; } .c-mean { width: 10%; } .c-seq { width: 8%; }
.c-signer { width: 21%; } .c-at { width: 17%; } .c-cstep { width: 27%; } .c-old { width: 14%; }
.c-who { width: 17%; } .c-ref { width: 15%; } .c-dstep { width: 11%; } .c-impact { width: 19%; }
.c-open { width: 13%; } td.num, .nw, .rng, .id, .cpp, .tag { white-space: nowrap; }
tr.exc-row td, td.exc-row { background: #fff6db; }
tr.oop-row td, td.oop-row { background: #fde2e0; }
.tag { display: inline-block; font-size: 6.5pt; font-weight: bold; padding: 0 2pt;
  border: 0.6pt solid; border-radius: 1.5pt; } td.num .tag { display: table; margin: 1pt 0 0; }
.tag.oop { color: #fff; background: #b42318; border-color: #b42318; }
.tag.exc { color: #7a4a00; background: #ffe9a8; } .tag.corr { color: #3b2a7a; background: #ece8fb; }
.tag.computed { color: #1f4e79; background: #e3eef9; }
.tag.closed { color: #14532d; background: #eaf6ec; } .sub { font-size: 6.5pt; color: #555; }
.cpp { font-size: 6.5pt; color: #7a1010; font-weight: bold; }
.note { margin: 1pt 0 0; } .corr-note { color: #3b2a7a; } .param { font-weight: bold; }
.bad { color: #b42318; font-weight: bold; } .warn { color: #b42318; }
.sig { margin: 1.5pt 0 0; padding-left: 4pt; border-left: 1.5pt solid #1a7f37; }
.sig.superseded { border-left-color: #c58a00; } .sig.bad { border-left-color: #b42318; }
.not-performed { margin: 3pt 0 0; padding: 3pt 5pt; border: 0.8pt dashed #888; color: #555;
  font-weight: bold; } .end { margin-top: 10pt; text-align: center; color: #555; }
"""
