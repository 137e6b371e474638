#include "server/store/sqlite_db.h"

namespace lab::server {

using domain::ErrorCode;
using domain::MakeError;

Statement& Statement::Bind(int index, std::string_view text) {
  sqlite3_bind_text(stmt_.get(), index, text.data(), static_cast<int>(text.size()),
                    SQLITE_TRANSIENT);
  return *this;
}
Statement& Statement::Bind(int index, std::int64_t value) {
  sqlite3_bind_int64(stmt_.get(), index, value);
  return *this;
}
Statement& Statement::Bind(int index, double value) {
  sqlite3_bind_double(stmt_.get(), index, value);
  return *this;
}
Statement& Statement::BindNull(int index) {
  sqlite3_bind_null(stmt_.get(), index);
  return *this;
}
Statement& Statement::BindOpt(int index, const std::optional<std::string>& text) {
  return text ? Bind(index, std::string_view(*text)) : BindNull(index);
}

bool Statement::Step() {
  int rc = sqlite3_step(stmt_.get());
  if (rc == SQLITE_ROW) return true;
  if (rc != SQLITE_DONE) {
    status_ = MakeError(ErrorCode::kInternal, std::string("sqlite step: ") + sqlite3_errmsg(db_));
  }
  return false;
}

domain::Status Statement::Run() {
  while (Step()) {
  }
  return status_;
}

std::string Statement::Text(int column) const {
  const auto* text = sqlite3_column_text(stmt_.get(), column);
  if (text == nullptr) return {};
  return {reinterpret_cast<const char*>(text),
          static_cast<std::size_t>(sqlite3_column_bytes(stmt_.get(), column))};
}
std::optional<std::string> Statement::OptText(int column) const {
  if (IsNull(column)) return std::nullopt;
  return Text(column);
}
std::int64_t Statement::Int(int column) const { return sqlite3_column_int64(stmt_.get(), column); }
double Statement::Real(int column) const { return sqlite3_column_double(stmt_.get(), column); }
bool Statement::IsNull(int column) const {
  return sqlite3_column_type(stmt_.get(), column) == SQLITE_NULL;
}

domain::Result<std::unique_ptr<SqliteDb>> SqliteDb::Open(const std::string& path, bool read_only) {
  sqlite3* raw = nullptr;
  int flags = (read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
              SQLITE_OPEN_NOMUTEX;
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  std::unique_ptr<SqliteDb> db(new SqliteDb(raw));  // NOLINT: private constructor
  if (rc != SQLITE_OK) {
    return MakeError(ErrorCode::kUnavailable,
                     "cannot open " + path + ": " + (raw ? sqlite3_errmsg(raw) : "out of memory"));
  }
  sqlite3_busy_timeout(raw, 5000);
  // WAL: readers never block the writer. synchronous=NORMAL in WAL mode keeps every committed
  // transaction across a process crash (kill -9); only an OS crash or power loss can lose the
  // last commits. --sync full trades throughput for that too (see README).
  for (const char* pragma : {"PRAGMA foreign_keys=ON", "PRAGMA temp_store=MEMORY"}) {
    if (auto s = db->Exec(pragma); !s.ok()) return s.error();
  }
  if (!read_only) {
    if (auto s = db->Exec("PRAGMA journal_mode=WAL"); !s.ok()) return s.error();
    if (auto s = db->Exec("PRAGMA synchronous=NORMAL"); !s.ok()) return s.error();
  }
  return db;
}

domain::Status SqliteDb::Exec(std::string_view sql) {
  char* message = nullptr;
  std::string text(sql);
  int rc = sqlite3_exec(db_.get(), text.c_str(), nullptr, nullptr, &message);
  if (rc != SQLITE_OK) {
    std::string why = message ? message : sqlite3_errmsg(db_.get());
    sqlite3_free(message);
    return MakeError(ErrorCode::kInternal, "sqlite: " + why);
  }
  return {};
}

domain::Result<Statement> SqliteDb::Prepare(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db_.get(), sql.data(), static_cast<int>(sql.size()), &stmt, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return MakeError(ErrorCode::kInternal, "sqlite prepare: " + ErrorMessage());
  }
  return Statement(db_.get(), stmt);
}

Transaction::Transaction(SqliteDb& db) : db_(db), begin_(db.Exec("BEGIN IMMEDIATE")) {}

Transaction::~Transaction() {
  if (begin_.ok() && !done_) (void)db_.Exec("ROLLBACK");
}

domain::Status Transaction::Commit() {
  if (!begin_.ok()) return begin_;
  auto status = db_.Exec("COMMIT");
  done_ = status.ok();
  return status;
}

}  // namespace lab::server
