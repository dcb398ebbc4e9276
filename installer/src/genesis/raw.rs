//! The genesis config as serde types: what each key of `config.yaml` may hold.
//!
//! Deserialization never fails on a value of the wrong shape: every key is a
//! [`Field`], which keeps a malformed value as it was written
//! ([`Field::Bad`]) so that the validation pass (`validate.rs`) can report
//! every problem at once. Keys a mapping does not know are kept too
//! ([`Keyed::unknown`]), in document order, for the "did you mean" hints.

use serde::de::{DeserializeOwned, Deserializer, Error as _};
use serde::Deserialize;
use serde_yaml::{Mapping, Value};

/// One key's value: absent, well-formed, or of another shape (kept for the message).
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Field<T> {
    /// The key is not in the mapping.
    #[default]
    Missing,
    /// The value has the expected shape.
    Good(T),
    /// The value as written (including `null`), which does not have the expected shape.
    Bad(Value),
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Field<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Through `Value`, which also takes tagged values (`!tag x`) that
        // serde's buffering (untagged enums, flatten) refuses.
        let v = Value::deserialize(d)?;
        Ok(match T::deserialize(&v) {
            Ok(t) => Field::Good(t),
            Err(_) => Field::Bad(v),
        })
    }
}

/// A string; numbers are taken as written (`cluster_name: 2024`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(s) => Ok(Text(s)),
            Value::Number(n) => Ok(Text(n.to_string())),
            _ => Err(D::Error::custom("expected a string")),
        }
    }
}

/// A boolean: YAML `true`/`false` or the strings `'true'`/`'false'` (as DC/OS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flag(pub bool);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Bool(b) => Ok(Flag(b)),
            Value::String(s) if s == "true" => Ok(Flag(true)),
            Value::String(s) if s == "false" => Ok(Flag(false)),
            _ => Err(D::Error::custom("expected true or false")),
        }
    }
}

/// A list of strings: a YAML list, or a JSON list in a string (as DC/OS).
/// Items of a YAML list must be strings; items of a JSON list are taken as
/// written (`[1]` is `"1"`).
#[derive(Debug, Clone, PartialEq)]
pub struct StrList(pub Vec<Field<String>>);

impl<'de> Deserialize<'de> for StrList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Sequence(items) => Ok(StrList(
                items
                    .into_iter()
                    .map(|i| match i {
                        Value::String(s) => Field::Good(s),
                        other => Field::Bad(other),
                    })
                    .collect(),
            )),
            Value::String(s) => serde_json::from_str::<Vec<serde_json::Value>>(&s)
                .map(|items| {
                    StrList(
                        items
                            .into_iter()
                            .map(|i| match i {
                                serde_json::Value::String(s) => Field::Good(s),
                                other => Field::Good(other.to_string()),
                            })
                            .collect(),
                    )
                })
                .map_err(D::Error::custom),
            _ => Err(D::Error::custom("expected a list")),
        }
    }
}

/// A port number: a YAML number or a numeric string (range checked later).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortNumber(pub u64);

impl<'de> Deserialize<'de> for PortNumber {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = match Value::deserialize(d)? {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.parse::<u64>().ok(),
            _ => None,
        };
        n.map(PortNumber)
            .ok_or_else(|| D::Error::custom("expected a port number"))
    }
}

/// A mapping's entries in document order (`ports`: name → number).
#[derive(Debug, Clone, PartialEq)]
pub struct Entries<V>(pub Vec<(Field<String>, Field<V>)>);

impl<'de, V: DeserializeOwned> Deserialize<'de> for Entries<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let Value::Mapping(m) = Value::deserialize(d)? else {
            return Err(D::Error::custom("expected a mapping"));
        };
        Ok(Entries(
            m.into_iter()
                .map(|(k, v)| {
                    let k = match k {
                        Value::String(s) => Field::Good(s),
                        other => Field::Bad(other),
                    };
                    let v = match V::deserialize(&v) {
                        Ok(v) => Field::Good(v),
                        Err(_) => Field::Bad(v),
                    };
                    (k, v)
                })
                .collect(),
        ))
    }
}

/// A YAML list (and only a list: `null` is not an empty list here).
#[derive(Debug, Clone, PartialEq)]
pub struct List<T>(pub Vec<Field<T>>);

impl<'de, T: DeserializeOwned> Deserialize<'de> for List<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let Value::Sequence(items) = Value::deserialize(d)? else {
            return Err(D::Error::custom("expected a list"));
        };
        Ok(List(
            items
                .into_iter()
                .map(|v| match T::deserialize(&v) {
                    Ok(t) => Field::Good(t),
                    Err(_) => Field::Bad(v),
                })
                .collect(),
        ))
    }
}

/// A struct deserialized from a mapping whose keys are listed in `KEYS`.
pub trait KnownKeys: DeserializeOwned {
    /// The keys the struct has (its serde field names).
    const KEYS: &'static [&'static str];
}

/// A mapping read into `T` (its known keys) plus the keys `T` does not have.
#[derive(Debug, Clone, PartialEq)]
pub struct Keyed<T> {
    /// The known keys.
    pub known: T,
    /// Every other key and its value, in document order.
    pub unknown: Vec<(Value, Value)>,
}

impl<T: KnownKeys> Keyed<T> {
    /// Split `m` into the keys `T` knows and the rest.
    pub fn from_mapping(m: Mapping) -> Result<Self, serde_yaml::Error> {
        let mut known = Mapping::new();
        let mut unknown = Vec::new();
        for (k, v) in m {
            match &k {
                Value::String(s) if T::KEYS.contains(&s.as_str()) => {
                    known.insert(k, v);
                }
                _ => unknown.push((k, v)),
            }
        }
        let known = T::deserialize(Value::Mapping(known))?;
        Ok(Keyed { known, unknown })
    }
}

impl<'de, T: KnownKeys> Deserialize<'de> for Keyed<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Mapping(m) => Keyed::from_mapping(m).map_err(D::Error::custom),
            _ => Err(D::Error::custom("expected a mapping")),
        }
    }
}

/// `genconf/config.yaml`: every key an operator may set (see docs/installer.md).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawConfig {
    /// Base URL of the serve dir.
    pub bootstrap_url: Field<Text>,
    /// Cluster name.
    pub cluster_name: Field<Text>,
    /// Only `static`.
    pub master_discovery: Field<Text>,
    /// Accepted for DC/OS compatibility.
    pub exhibitor_storage_backend: Field<Text>,
    /// Master IPv4 addresses.
    pub master_list: Field<StrList>,
    /// Private agents.
    pub agent_list: Field<StrList>,
    /// Public agents.
    pub public_agent_list: Field<StrList>,
    /// Upstream resolvers.
    pub resolvers: Field<StrList>,
    /// Space separated search domains.
    pub dns_search: Field<Text>,
    /// Admin Router authentication.
    pub oauth_enabled: Field<Flag>,
    /// Superuser uid.
    pub superuser_username: Field<Text>,
    /// Plaintext superuser password.
    pub superuser_password: Field<Text>,
    /// argon2id PHC string.
    pub superuser_password_hash: Field<Text>,
    /// `embedded` or a `zk://` URL.
    pub store: Field<Text>,
    /// Port name → number.
    pub ports: Field<Entries<PortNumber>>,
    /// `[{name, uri}]`.
    pub universe_repositories: Field<List<Keyed<RawRepository>>>,
    /// Where the ip-detect script is (read by `load_genconf`).
    pub ip_detect_filename: Field<Text>,
    /// Install tree on nodes.
    pub install_dir: Field<Text>,
    /// State dir on nodes.
    pub work_dir: Field<Text>,
    /// Preflight's free-space floor, MiB.
    pub min_free_disk_mb: Field<u64>,
}

impl KnownKeys for RawConfig {
    const KEYS: &'static [&'static str] = super::KNOWN_KEYS;
}

/// One entry of `universe_repositories`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawRepository {
    /// Repository name.
    pub name: Field<Text>,
    /// Repository URI.
    pub uri: Field<Text>,
}

impl KnownKeys for RawRepository {
    const KEYS: &'static [&'static str] = &["name", "uri"];
}

/// What a value is, for "must be X, got Y" messages.
pub fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::value::Error as DeError;
    use std::cell::Cell;

    /// A deserializer that only records the field names a struct asks for.
    struct FieldNames<'a>(&'a Cell<&'static [&'static str]>);

    impl<'de> Deserializer<'de> for FieldNames<'_> {
        type Error = DeError;
        fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, DeError> {
            Err(DeError::custom("not a struct"))
        }
        fn deserialize_struct<V: serde::de::Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, DeError> {
            self.0.set(fields);
            Err(DeError::custom("recorded"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map
            enum identifier ignored_any
        }
    }

    fn serde_fields<T: DeserializeOwned>() -> Vec<&'static str> {
        let cell = Cell::new(&[][..]);
        let _ = T::deserialize(FieldNames(&cell));
        let mut v = cell.get().to_vec();
        v.sort_unstable();
        v
    }

    fn sorted(keys: &[&'static str]) -> Vec<&'static str> {
        let mut v = keys.to_vec();
        v.sort_unstable();
        v
    }

    #[test]
    fn known_keys_are_exactly_the_serde_fields() {
        assert_eq!(serde_fields::<RawConfig>(), sorted(RawConfig::KEYS));
        assert_eq!(serde_fields::<RawRepository>(), sorted(RawRepository::KEYS));
    }

    #[test]
    fn malformed_values_are_kept_not_fatal() {
        let m: Mapping = serde_yaml::from_str(
            "cluster_name: !custom x\nports: {master: '5050', agent: [1]}\nmaster_list: '[1, \"a\"]'\nzzz: 1\n",
        )
        .unwrap();
        let k = Keyed::<RawConfig>::from_mapping(m).unwrap();
        assert!(matches!(k.known.cluster_name, Field::Bad(Value::Tagged(_))));
        let Field::Good(Entries(ports)) = &k.known.ports else {
            panic!("{:?}", k.known.ports)
        };
        assert_eq!(ports[0].1, Field::Good(PortNumber(5050)));
        assert!(matches!(ports[1].1, Field::Bad(Value::Sequence(_))));
        assert_eq!(
            k.known.master_list,
            Field::Good(StrList(vec![
                Field::Good("1".into()),
                Field::Good("a".into())
            ]))
        );
        assert_eq!(k.known.bootstrap_url, Field::Missing);
        assert_eq!(k.unknown.len(), 1);
    }
}
