//! Text tables (comfy-table): columns sized by the display width of their cells, so
//! names with wide characters (CJK, emoji) keep the columns aligned.

use comfy_table::{presets, CellAlignment, ColumnConstraint, ContentArrangement, Table};

/// A borderless table indented by two spaces; `right` lists the columns aligned right
/// (numbers).
pub(crate) fn render<R, C>(header: &[&str], right: &[usize], rows: R) -> String
where
    R: IntoIterator<Item = Vec<C>>,
    C: Into<comfy_table::Cell>,
{
    let mut table = Table::new();
    table
        .load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header.iter().copied());
    for row in rows {
        table.add_row(row);
    }
    for (i, column) in table.column_iter_mut().enumerate() {
        column.set_padding((0, 2));
        column.set_constraint(ColumnConstraint::ContentWidth);
        if right.contains(&i) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    let mut out = String::new();
    for line in table.lines() {
        out.push_str("  ");
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
