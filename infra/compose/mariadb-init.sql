-- docker-compose.yml only: the grants infra/lib/parts.sh (mysql_bootstrap) gives on the native stack.
GRANT ALL PRIVILEGES ON `lab%`.* TO 'lab'@'%';
GRANT PROCESS, REPLICATION CLIENT ON *.* TO 'lab'@'%';
CREATE USER IF NOT EXISTS 'lab_exporter'@'%' IDENTIFIED BY 'lab_exporter' WITH MAX_USER_CONNECTIONS 3;
GRANT PROCESS, REPLICATION CLIENT, SELECT ON *.* TO 'lab_exporter'@'%';
