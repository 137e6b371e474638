// RAII wrappers over libmysqlclient (libmariadb 3.3 through default-libmysqlclient-dev): one
// connection with connect/read/write timeouts and cached prepared statements, a small bounded
// pool, and the migration runner for migrations/mysql. A MYSQL handle stays on one thread at a
// time (the pool hands it out exclusively). Errors carry mysql_error()/mysql_stmt_error().
#pragma once

#include <mysql.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "domain/result.h"
#include "runners/common/c_handle.h"

namespace lab::runners::mysql {

using domain::Result;
using domain::Status;
using Ms = std::chrono::milliseconds;

struct MysqlConfig {
  std::string host = "127.0.0.1";
  int port = 13306;
  std::string user = "lab";
  std::string password;  // never logged
  std::string database = "lab";
  Ms connect_timeout{3000};
  Ms read_timeout{15000};
  Ms write_timeout{15000};
};

using Param = std::variant<std::nullptr_t, std::int64_t, std::string>;
using Row = std::vector<std::optional<std::string>>;

struct Rows {
  std::vector<std::string> columns;
  std::vector<Row> rows;
  // The first column of the first row as an integer (0 when absent/NULL): for COUNT(*) etc.
  std::int64_t Scalar() const;
};

// MariaDB/MySQL error numbers the runners act on.
inline constexpr unsigned kErrDeadlock = 1213;
inline constexpr unsigned kErrLockWaitTimeout = 1205;
inline constexpr unsigned kErrDuplicateKey = 1062;

using MysqlHandle = CHandle<MYSQL, mysql_close>;
using StmtHandle = CHandle<MYSQL_STMT, mysql_stmt_close>;

class Connection {
 public:
  static Result<std::unique_ptr<Connection>> Open(const MysqlConfig& config);
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();  // statements are closed before the connection

  // Text protocol, no result set (DDL, BEGIN, …).
  Status Execute(const std::string& sql);
  // Prepared (cached per SQL text); returns affected rows.
  Result<std::uint64_t> Exec(const std::string& sql, const std::vector<Param>& params);
  // Prepared when params are given, text otherwise; all values come back as strings.
  Result<Rows> Query(const std::string& sql, const std::vector<Param>& params = {});
  Status Begin() { return Execute("START TRANSACTION"); }
  Status Commit() { return Execute("COMMIT"); }
  Status Rollback() { return Execute("ROLLBACK"); }
  std::uint64_t LastInsertId() const { return last_insert_id_; }
  unsigned last_errno() const { return last_errno_; }
  bool broken() const;  // the server connection is gone (2006/2013): discard, do not reuse
  MYSQL* raw() const { return mysql_.get(); }

 private:
  Connection() = default;
  Result<MYSQL_STMT*> Prepared(const std::string& sql);
  domain::Error Fail(const std::string& what);
  domain::Error StmtFail(MYSQL_STMT* stmt, const std::string& what);
  Status BindAndExecute(MYSQL_STMT* stmt, const std::vector<Param>& params, const std::string& sql);

  std::map<std::string, StmtHandle> statements_;  // closed in ~Connection, before mysql_
  MysqlHandle mysql_;
  unsigned last_errno_ = 0;
  std::uint64_t last_insert_id_ = 0;
};

// A bounded pool: Acquire waits up to its timeout for a free connection.
class Pool {
 public:
  Pool(MysqlConfig config, std::size_t max_size);
  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  class Lease {
   public:
    Lease(Pool* pool, std::unique_ptr<Connection> conn) : pool_(pool), conn_(std::move(conn)) {}
    Lease(Lease&&) noexcept = default;
    Lease& operator=(Lease&&) noexcept = default;
    ~Lease();
    Connection* operator->() const { return conn_.get(); }
    Connection& operator*() const { return *conn_; }

   private:
    Pool* pool_;
    std::unique_ptr<Connection> conn_;
  };

  Result<Lease> Acquire(Ms timeout);

 private:
  void Return(std::unique_ptr<Connection> conn);
  MysqlConfig config_;
  std::size_t max_size_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Connection>> idle_;  // guarded by mu_
  std::size_t open_ = 0;                           // guarded by mu_
};

// Applies every numbered *.sql file of `dir` not yet recorded in lab_schema_version, in order,
// each once (serialised across processes with GET_LOCK). Returns the versions applied now.
Result<std::vector<std::string>> ApplyMigrations(Connection& conn, const std::string& dir);

// Runs `fn` in a transaction, retrying on deadlock/lock-wait timeout up to `attempts` times.
template <typename Fn>
Status InTransaction(Connection& conn, Fn&& fn, int attempts = 5) {
  for (int i = 0;; ++i) {
    if (auto s = conn.Begin(); !s) return s;
    Status s = fn(conn);
    if (s) s = conn.Commit();
    if (s) return s;
    unsigned err = conn.last_errno();
    (void)conn.Rollback();
    if ((err != kErrDeadlock && err != kErrLockWaitTimeout) || i + 1 >= attempts) return s;
  }
}

}  // namespace lab::runners::mysql
