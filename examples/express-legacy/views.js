// Server-side templates, rendered synchronously as many Express apps do
// (ejs, pug, handlebars in their sync modes): a big invoice page is
// milliseconds to tens of milliseconds of string building on the event loop.

const escapes = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const escape = (value) => String(value).replace(/[&<>"']/g, (char) => escapes[char]);
const money = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'EUR' });

export function invoicePage(invoice) {
  const rows = invoice.lines
    .map(
      (line, index) => `
      <tr class="${index % 2 === 0 ? 'even' : 'odd'}">
        <td>${index + 1}</td>
        <td>${escape(line.sku)}</td>
        <td>${escape(line.description)}</td>
        <td class="number">${line.quantity}</td>
        <td class="number">${money.format(line.unitPrice)}</td>
        <td class="number">${money.format(line.quantity * line.unitPrice)}</td>
      </tr>`,
    )
    .join('');
  const total = invoice.lines.reduce((sum, line) => sum + line.quantity * line.unitPrice, 0);
  return `<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Invoice ${escape(invoice.id)}</title></head>
<body>
  <h1>Invoice ${escape(invoice.id)}</h1>
  <p>Customer: ${escape(invoice.customer)}</p>
  <table>
    <thead><tr><th>#</th><th>SKU</th><th>Description</th><th>Qty</th><th>Unit</th><th>Amount</th></tr></thead>
    <tbody>${rows}
    </tbody>
    <tfoot><tr><td colspan="5">Total</td><td class="number" id="total">${money.format(total)}</td></tr></tfoot>
  </table>
</body>
</html>
`;
}
