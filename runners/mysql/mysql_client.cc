#include "runners/mysql/mysql_client.h"

#include <errmsg.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace lab::runners::mysql {
namespace {

using domain::ErrorCode;
using domain::MakeError;

void LibraryInitOnce() {
  static std::once_flag once;
  std::call_once(once, [] { mysql_library_init(0, nullptr, nullptr); });
}

// mysql_thread_init/end per thread that uses the client (userver does the same).
struct ThreadInit {
  ThreadInit() { mysql_thread_init(); }
  ~ThreadInit() { mysql_thread_end(); }
};

void EnsureThreadInit() { thread_local ThreadInit init; }

ErrorCode CodeFor(unsigned err) {
  if (err == CR_SERVER_GONE_ERROR || err == CR_SERVER_LOST || err == CR_CONN_HOST_ERROR ||
      err == CR_CONNECTION_ERROR) {
    return ErrorCode::kUnavailable;
  }
  if (err == kErrLockWaitTimeout) return ErrorCode::kTimeout;
  if (err == kErrDuplicateKey) return ErrorCode::kConflict;
  return ErrorCode::kInternal;
}

}  // namespace

std::int64_t Rows::Scalar() const {
  if (rows.empty() || rows[0].empty() || !rows[0][0]) return 0;
  return std::stoll(*rows[0][0]);
}

Result<std::unique_ptr<Connection>> Connection::Open(const MysqlConfig& config) {
  LibraryInitOnce();
  EnsureThreadInit();
  std::unique_ptr<Connection> conn(new Connection());
  conn->mysql_.reset(mysql_init(nullptr));
  if (!conn->mysql_) return MakeError(ErrorCode::kResourceExhausted, "mysql_init failed");
  MYSQL* m = conn->mysql_.get();
  unsigned connect =
      static_cast<unsigned>(std::max<long>(1, config.connect_timeout.count() / 1000));
  unsigned read = static_cast<unsigned>(std::max<long>(1, config.read_timeout.count() / 1000));
  unsigned write = static_cast<unsigned>(std::max<long>(1, config.write_timeout.count() / 1000));
  mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &connect);
  mysql_options(m, MYSQL_OPT_READ_TIMEOUT, &read);
  mysql_options(m, MYSQL_OPT_WRITE_TIMEOUT, &write);
  mysql_options(m, MYSQL_SET_CHARSET_NAME, "utf8mb4");
  if (mysql_real_connect(m, config.host.c_str(), config.user.c_str(), config.password.c_str(),
                         config.database.c_str(), static_cast<unsigned>(config.port), nullptr,
                         0) == nullptr) {
    return MakeError(
        ErrorCode::kUnavailable,
        "mysql connect " + config.host + ":" + std::to_string(config.port) + ": " + mysql_error(m));
  }
  return conn;
}

Connection::~Connection() { statements_.clear(); }

bool Connection::broken() const {
  return last_errno_ == CR_SERVER_GONE_ERROR || last_errno_ == CR_SERVER_LOST ||
         last_errno_ == CR_CONN_HOST_ERROR || last_errno_ == CR_CONNECTION_ERROR;
}

domain::Error Connection::Fail(const std::string& what) {
  last_errno_ = mysql_errno(mysql_.get());
  return MakeError(CodeFor(last_errno_),
                   what + ": [" + std::to_string(last_errno_) + "] " + mysql_error(mysql_.get()));
}

domain::Error Connection::StmtFail(MYSQL_STMT* stmt, const std::string& what) {
  last_errno_ = mysql_stmt_errno(stmt);
  return MakeError(CodeFor(last_errno_),
                   what + ": [" + std::to_string(last_errno_) + "] " + mysql_stmt_error(stmt));
}

Status Connection::Execute(const std::string& sql) {
  EnsureThreadInit();
  last_errno_ = 0;
  if (mysql_real_query(mysql_.get(), sql.data(), sql.size()) != 0) return Fail(sql.substr(0, 80));
  // Drain any result so the connection stays usable.
  CHandle<MYSQL_RES, mysql_free_result> res(mysql_store_result(mysql_.get()));
  last_insert_id_ = mysql_insert_id(mysql_.get());
  return {};
}

Result<MYSQL_STMT*> Connection::Prepared(const std::string& sql) {
  auto it = statements_.find(sql);
  if (it != statements_.end()) return it->second.get();
  StmtHandle stmt(mysql_stmt_init(mysql_.get()));
  if (!stmt) return Fail("mysql_stmt_init");
  if (mysql_stmt_prepare(stmt.get(), sql.data(), sql.size()) != 0) {
    return StmtFail(stmt.get(), "prepare " + sql.substr(0, 80));
  }
  MYSQL_STMT* raw = stmt.get();
  statements_.emplace(sql, std::move(stmt));
  return raw;
}

Status Connection::BindAndExecute(MYSQL_STMT* stmt, const std::vector<Param>& params,
                                  const std::string& sql) {
  std::vector<MYSQL_BIND> binds(params.size());
  std::vector<long long> ints(params.size());
  std::vector<unsigned long> lengths(params.size());
  for (std::size_t i = 0; i < params.size(); ++i) {
    std::memset(&binds[i], 0, sizeof(MYSQL_BIND));
    if (std::holds_alternative<std::nullptr_t>(params[i])) {
      binds[i].buffer_type = MYSQL_TYPE_NULL;
    } else if (const auto* n = std::get_if<std::int64_t>(&params[i])) {
      ints[i] = *n;
      binds[i].buffer_type = MYSQL_TYPE_LONGLONG;
      binds[i].buffer = &ints[i];
    } else {
      const auto& s = std::get<std::string>(params[i]);
      lengths[i] = s.size();
      binds[i].buffer_type = MYSQL_TYPE_STRING;
      binds[i].buffer = const_cast<char*>(s.data());
      binds[i].buffer_length = s.size();
      binds[i].length = &lengths[i];
    }
  }
  if (mysql_stmt_param_count(stmt) != params.size()) {
    return MakeError(ErrorCode::kInvalidArgument, "statement wants " +
                                                      std::to_string(mysql_stmt_param_count(stmt)) +
                                                      " parameters: " + sql.substr(0, 80));
  }
  if (!params.empty() && mysql_stmt_bind_param(stmt, binds.data()) != 0) {
    return StmtFail(stmt, "bind " + sql.substr(0, 80));
  }
  if (mysql_stmt_execute(stmt) != 0) return StmtFail(stmt, sql.substr(0, 80));
  return {};
}

Result<std::uint64_t> Connection::Exec(const std::string& sql, const std::vector<Param>& params) {
  EnsureThreadInit();
  last_errno_ = 0;
  auto stmt = Prepared(sql);
  if (!stmt) return stmt.error();
  if (auto s = BindAndExecute(*stmt, params, sql); !s) {
    if (broken()) statements_.clear();
    return s.error();
  }
  last_insert_id_ = mysql_stmt_insert_id(*stmt);
  auto affected = mysql_stmt_affected_rows(*stmt);
  mysql_stmt_free_result(*stmt);
  return static_cast<std::uint64_t>(affected);
}

Result<Rows> Connection::Query(const std::string& sql, const std::vector<Param>& params) {
  EnsureThreadInit();
  last_errno_ = 0;
  Rows out;
  if (params.empty()) {
    if (mysql_real_query(mysql_.get(), sql.data(), sql.size()) != 0) return Fail(sql.substr(0, 80));
    CHandle<MYSQL_RES, mysql_free_result> res(mysql_store_result(mysql_.get()));
    if (!res) {
      if (mysql_field_count(mysql_.get()) != 0) return Fail("store result");
      return out;
    }
    unsigned n = mysql_num_fields(res.get());
    MYSQL_FIELD* fields = mysql_fetch_fields(res.get());
    for (unsigned i = 0; i < n; ++i) out.columns.emplace_back(fields[i].name);
    while (MYSQL_ROW row = mysql_fetch_row(res.get())) {
      unsigned long* lens = mysql_fetch_lengths(res.get());
      Row r(n);
      for (unsigned i = 0; i < n; ++i) {
        if (row[i] != nullptr) r[i] = std::string(row[i], lens[i]);
      }
      out.rows.push_back(std::move(r));
    }
    return out;
  }
  auto stmt_r = Prepared(sql);
  if (!stmt_r) return stmt_r.error();
  MYSQL_STMT* stmt = *stmt_r;
  if (auto s = BindAndExecute(stmt, params, sql); !s) {
    if (broken()) statements_.clear();
    return s.error();
  }
  CHandle<MYSQL_RES, mysql_free_result> meta(mysql_stmt_result_metadata(stmt));
  if (!meta) {
    mysql_stmt_free_result(stmt);
    return out;
  }
  unsigned n = mysql_num_fields(meta.get());
  MYSQL_FIELD* fields = mysql_fetch_fields(meta.get());
  for (unsigned i = 0; i < n; ++i) out.columns.emplace_back(fields[i].name);
  constexpr unsigned long kBuf = 512;
  std::vector<std::vector<char>> buffers(n, std::vector<char>(kBuf));
  std::vector<unsigned long> lengths(n);
  std::vector<my_bool> nulls(n);
  std::vector<my_bool> errors(n);
  std::vector<MYSQL_BIND> binds(n);
  for (unsigned i = 0; i < n; ++i) {
    std::memset(&binds[i], 0, sizeof(MYSQL_BIND));
    binds[i].buffer_type = MYSQL_TYPE_STRING;
    binds[i].buffer = buffers[i].data();
    binds[i].buffer_length = kBuf;
    binds[i].length = &lengths[i];
    binds[i].is_null = &nulls[i];
    binds[i].error = &errors[i];
  }
  if (mysql_stmt_bind_result(stmt, binds.data()) != 0) return StmtFail(stmt, "bind result");
  if (mysql_stmt_store_result(stmt) != 0) return StmtFail(stmt, "store result");
  while (true) {
    int rc = mysql_stmt_fetch(stmt);
    if (rc == MYSQL_NO_DATA) break;
    if (rc == 1) {
      auto e = StmtFail(stmt, "fetch");
      mysql_stmt_free_result(stmt);
      return e;
    }
    Row r(n);
    for (unsigned i = 0; i < n; ++i) {
      if (nulls[i]) continue;
      if (lengths[i] <= kBuf) {
        r[i] = std::string(buffers[i].data(), lengths[i]);
      } else {  // truncated: fetch the whole column
        std::string big(lengths[i], '\0');
        MYSQL_BIND b;
        std::memset(&b, 0, sizeof b);
        b.buffer_type = MYSQL_TYPE_STRING;
        b.buffer = big.data();
        b.buffer_length = big.size();
        mysql_stmt_fetch_column(stmt, &b, i, 0);
        r[i] = std::move(big);
      }
    }
    out.rows.push_back(std::move(r));
  }
  mysql_stmt_free_result(stmt);
  return out;
}

// ---------------------------------------------------------------- Pool

Pool::Pool(MysqlConfig config, std::size_t max_size)
    : config_(std::move(config)), max_size_(max_size) {}

Pool::~Pool() {
  std::lock_guard lock(mu_);
  idle_.clear();
}

Pool::Lease::~Lease() {
  if (pool_ != nullptr && conn_) pool_->Return(std::move(conn_));
}

void Pool::Return(std::unique_ptr<Connection> conn) {
  std::lock_guard lock(mu_);
  if (conn->broken()) {
    --open_;
  } else {
    idle_.push_back(std::move(conn));
  }
  cv_.notify_one();
}

Result<Pool::Lease> Pool::Acquire(Ms timeout) {
  std::unique_lock lock(mu_);
  bool ready = cv_.wait_for(lock, timeout, [this] { return !idle_.empty() || open_ < max_size_; });
  if (!ready) {
    return MakeError(ErrorCode::kTimeout, "mysql pool: no connection free within " +
                                              std::to_string(timeout.count()) + " ms");
  }
  if (!idle_.empty()) {
    auto conn = std::move(idle_.back());
    idle_.pop_back();
    return Lease(this, std::move(conn));
  }
  ++open_;
  lock.unlock();
  auto conn = Connection::Open(config_);
  if (!conn) {
    std::lock_guard relock(mu_);
    --open_;
    cv_.notify_one();
    return conn.error();
  }
  return Lease(this, std::move(*conn));
}

// ---------------------------------------------------------------- migrations

Result<std::vector<std::string>> ApplyMigrations(Connection& conn, const std::string& dir) {
  namespace fs = std::filesystem;
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.path().extension() == ".sql") files.push_back(entry.path());
  }
  if (ec) return MakeError(ErrorCode::kNotFound, "migrations dir " + dir + ": " + ec.message());
  std::sort(files.begin(), files.end());
  auto lock = conn.Query("SELECT GET_LOCK('lab_mysql_migrations', 30)");
  if (!lock) return lock.error();
  if (lock->Scalar() != 1)
    return MakeError(ErrorCode::kTimeout, "migration lock not granted in 30 s");
  std::vector<std::string> applied;
  auto release = [&conn] { (void)conn.Query("SELECT RELEASE_LOCK('lab_mysql_migrations')"); };
  if (auto s = conn.Execute(
          "CREATE TABLE IF NOT EXISTS lab_schema_version (version VARCHAR(128) PRIMARY KEY, "
          "applied_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)) ENGINE=InnoDB");
      !s) {
    release();
    return s.error();
  }
  for (const auto& file : files) {
    std::string version = file.filename().string();
    auto seen = conn.Query("SELECT COUNT(*) FROM lab_schema_version WHERE version = ?", {version});
    if (!seen) {
      release();
      return seen.error();
    }
    if (seen->Scalar() > 0) continue;
    std::ifstream in(file);
    std::stringstream text;
    text << in.rdbuf();
    // Statements end with ';' at the end of a line; '--' lines are comments.
    std::string statement;
    std::string line;
    std::istringstream lines(text.str());
    while (std::getline(lines, line)) {
      auto first = line.find_first_not_of(" \t");
      if (first == std::string::npos || line.compare(first, 2, "--") == 0) continue;
      statement += line + "\n";
      auto last = line.find_last_not_of(" \t\r");
      if (last != std::string::npos && line[last] == ';') {
        if (auto s = conn.Execute(statement); !s) {
          release();
          return MakeError(s.error().code, version + ": " + s.error().message);
        }
        statement.clear();
      }
    }
    if (auto s = conn.Exec("INSERT INTO lab_schema_version (version) VALUES (?)", {version}); !s) {
      release();
      return s.error();
    }
    applied.push_back(version);
  }
  release();
  return applied;
}

}  // namespace lab::runners::mysql
