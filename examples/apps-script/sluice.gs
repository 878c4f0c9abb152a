/**
 * Sluice: Google Sheets edits and Google Forms submissions, posted to
 * Sluice's `apps_script` provider (POST /hooks/<provider>), signed with
 * HMAC-SHA256 over the body in `X-Sluice-Signature` (base64).
 *
 * Setup (docs/google.md says it step by step):
 *  1. Extensions → Apps Script in the spreadsheet (or the form's script
 *     editor); paste this file.
 *  2. Project Settings → Script properties:
 *       SLUICE_URL     https://sluice.example.com/hooks/apps_script
 *       SLUICE_SECRET  the provider's verify.secret
 *  3. Triggers → Add trigger: `onSheetEdit` (From spreadsheet, On edit)
 *     and/or `onFormSubmitted` (From form, On form submit). Installable
 *     triggers: simple ones may not call UrlFetchApp.
 *
 * The body is Sluice's own contract, read by the built-in Google mapper.
 */

/** Installable "On edit" trigger of a spreadsheet. */
function onSheetEdit(e) {
  var range = e.range;
  var sheet = range.getSheet();
  var row = range.getRow();
  if (row <= 1) {
    return; // the header row names the columns; it belongs to no ticket
  }
  var width = sheet.getLastColumn();
  var headers = sheet.getRange(1, 1, 1, width).getDisplayValues()[0];
  var values = sheet.getRange(row, 1, 1, width).getDisplayValues()[0];
  var changes = [];
  var single = range.getNumRows() === 1 && range.getNumColumns() === 1;
  for (var c = range.getColumn(); c <= range.getLastColumn(); c++) {
    changes.push({
      column: headers[c - 1] || columnLetter_(c),
      // Only a single-cell edit tells the old value.
      old: single && e.oldValue !== undefined ? String(e.oldValue) : null,
      new: values[c - 1],
    });
  }
  var book = sheet.getParent();
  post_({
    source: 'sheets',
    event: 'edit',
    id: Utilities.getUuid(),
    at: new Date().toISOString(),
    // Empty unless the editor is in the script owner's domain.
    user: e.user ? e.user.getEmail() : '',
    spreadsheet: { id: book.getId(), name: book.getName(), url: book.getUrl() },
    sheet: sheet.getName(),
    row: row,
    range: range.getA1Notation(),
    headers: headers,
    values: values,
    changes: changes,
  });
}

/** Installable "On form submit" trigger of a form. */
function onFormSubmitted(e) {
  var response = e.response;
  var form = FormApp.getActiveForm();
  var answers = {};
  response.getItemResponses().forEach(function (item) {
    answers[item.getItem().getTitle()] = item.getResponse();
  });
  post_({
    source: 'forms',
    event: 'submit',
    id: Utilities.getUuid(),
    at: response.getTimestamp().toISOString(),
    form: { id: form.getId(), title: form.getTitle() },
    response: { id: response.getId(), respondent: response.getRespondentEmail() || '' },
    answers: answers,
  });
}

/** Signs and sends one body; a refusal is logged in the trigger's executions. */
function post_(body) {
  var props = PropertiesService.getScriptProperties();
  var url = props.getProperty('SLUICE_URL');
  var secret = props.getProperty('SLUICE_SECRET');
  if (!url || !secret) {
    throw new Error('set the script properties SLUICE_URL and SLUICE_SECRET');
  }
  var payload = JSON.stringify(body);
  // The HMAC covers the exact bytes sent: UTF-8 of the JSON text.
  var signature = Utilities.base64Encode(
    Utilities.computeHmacSha256Signature(
      Utilities.newBlob(payload).getBytes(),
      Utilities.newBlob(secret).getBytes()
    )
  );
  var answer = UrlFetchApp.fetch(url, {
    method: 'post',
    contentType: 'application/json; charset=utf-8',
    payload: payload,
    headers: { 'X-Sluice-Signature': signature },
    muteHttpExceptions: true,
  });
  var status = answer.getResponseCode();
  if (status >= 300) {
    throw new Error('Sluice answered ' + status + ': ' + answer.getContentText());
  }
}

function columnLetter_(n) {
  var s = '';
  while (n > 0) {
    var m = (n - 1) % 26;
    s = String.fromCharCode(65 + m) + s;
    n = Math.floor((n - 1) / 26);
  }
  return s;
}
