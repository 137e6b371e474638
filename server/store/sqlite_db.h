// RAII over the SQLite C API: a connection, prepared statements, and a transaction guard.
// Errors carry sqlite3_errmsg so the caller's message says what the database said.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "domain/result.h"

namespace lab::server {

struct SqliteCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct StmtFinalizer {
  void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
};

class Statement {
 public:
  Statement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}

  Statement& Bind(int index, std::string_view text);
  Statement& Bind(int index, std::int64_t value);
  Statement& Bind(int index, double value);
  Statement& BindNull(int index);
  Statement& BindOpt(int index, const std::optional<std::string>& text);

  // Steps once: true while a row is available; throws nothing, errors land in status().
  bool Step();
  // Runs a statement that returns no rows.
  domain::Status Run();
  domain::Status status() const { return status_; }

  std::string Text(int column) const;
  std::optional<std::string> OptText(int column) const;
  std::int64_t Int(int column) const;
  double Real(int column) const;
  bool IsNull(int column) const;

 private:
  sqlite3* db_;
  std::unique_ptr<sqlite3_stmt, StmtFinalizer> stmt_;
  domain::Status status_;
};

class SqliteDb {
 public:
  // Opens (creating if needed) with WAL, foreign keys and a busy timeout.
  static domain::Result<std::unique_ptr<SqliteDb>> Open(const std::string& path, bool read_only);

  domain::Status Exec(std::string_view sql);
  domain::Result<Statement> Prepare(std::string_view sql);
  sqlite3* handle() const { return db_.get(); }
  std::string ErrorMessage() const { return sqlite3_errmsg(db_.get()); }

 private:
  explicit SqliteDb(sqlite3* db) : db_(db) {}
  std::unique_ptr<sqlite3, SqliteCloser> db_;
};

// BEGIN IMMEDIATE … COMMIT, rolled back if Commit() was not reached.
class Transaction {
 public:
  explicit Transaction(SqliteDb& db);
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  domain::Status status() const { return begin_; }
  domain::Status Commit();

 private:
  SqliteDb& db_;
  domain::Status begin_;
  bool done_ = false;
};

}  // namespace lab::server
