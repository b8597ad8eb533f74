//! The domain's error type and its mapping to what callers may see.

use crate::model::AppError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("not found")]
    NotFound,
    #[error("not signed in")]
    Unauthorized,
    #[error("forbidden")]
    Forbidden,
    #[error("{field}: {message}")]
    Validation { field: String, message: String },
    #[error("{0}")]
    Conflict(String),
    #[error("database error")]
    Database(#[source] sqlx::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::RowNotFound => Self::NotFound,
            other => Self::Database(other),
        }
    }
}

impl From<AppError> for Error {
    /// Validation helpers in `model::rules` speak `AppError`.
    fn from(e: AppError) -> Self {
        match e {
            AppError::Validation { field, message } => Self::Validation { field, message },
            AppError::NotFound => Self::NotFound,
            AppError::Forbidden => Self::Forbidden,
            AppError::Unauthorized => Self::Unauthorized,
            AppError::Conflict { message } => Self::Conflict(message),
            other => Self::Conflict(other.to_string()),
        }
    }
}

impl From<Error> for AppError {
    /// Database errors are logged here, once, with a reference the person
    /// can quote; their text never reaches the caller.
    fn from(e: Error) -> Self {
        match e {
            Error::NotFound => AppError::NotFound,
            Error::Unauthorized => AppError::Unauthorized,
            Error::Forbidden => AppError::Forbidden,
            Error::Validation { field, message } => AppError::Validation { field, message },
            Error::Conflict(message) => AppError::Conflict { message },
            Error::Database(source) => {
                let reference = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
                if matches!(source, sqlx::Error::PoolTimedOut | sqlx::Error::Io(_)) {
                    tracing::warn!(reference, error = %source, "database unavailable");
                    return AppError::Unavailable {
                        dependency: "PostgreSQL".into(),
                    };
                }
                tracing::error!(reference, error = %source, "database error");
                AppError::Internal { reference }
            }
        }
    }
}

/// The name of the unique or check constraint a database error violated.
pub fn violated_constraint(e: &sqlx::Error) -> Option<&str> {
    match e {
        sqlx::Error::Database(db) => db.constraint(),
        _ => None,
    }
}
