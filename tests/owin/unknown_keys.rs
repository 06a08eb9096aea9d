//! Unknown keys.

use super::*;

#[derive(Debug, PartialEq)]
struct Tag(u32);

#[tokio::test]
async fn unknown_keys_survive_into_feature_based_code() {
    // (my.key, my.int, my.flag, my.tag is Tag(7), the Extras keys)
    type Extracted = (Option<String>, Option<i64>, Option<bool>, bool, Vec<String>);
    let seen: Shared<Option<Extracted>> = shared();
    let later = {
        let seen = seen.clone();
        after(move |ctx: &mut HttpContext| {
            let seen = seen.clone();
            Box::pin(async move {
                let extras = ctx.features().get::<Extras>().expect("Extras feature");
                let mut names: Vec<String> = extras.keys().map(str::to_owned).collect();
                names.sort();
                *seen.lock().unwrap() = Some((
                    extras
                        .get("my.key")
                        .and_then(|v| v.downcast_ref::<String>())
                        .cloned(),
                    extras
                        .get("my.int")
                        .and_then(|v| v.downcast_ref::<i64>())
                        .copied(),
                    extras
                        .get("my.flag")
                        .and_then(|v| v.downcast_ref::<bool>())
                        .copied(),
                    extras
                        .get("my.tag")
                        .and_then(|v| v.downcast_ref::<Tag>())
                        .is_some_and(|t| *t == Tag(7)),
                    names,
                ));
            })
        })
    };
    let setter = OwinApp::new(app_func(|env: &mut Environment| {
        Box::pin(async move {
            env.set("my.key", "v".into())?;
            env.set("my.int", Value::Int(5))?;
            env.set("my.flag", Value::Bool(true))?;
            env.set("my.tag", Value::Any(Box::new(Tag(7))))?;
            env.set("my.removed", "gone".into())?;
            assert!(env.remove("my.removed").is_some());
            assert!(
                env.remove(keys::REQUEST_PATH).is_none(),
                "standard keys are views"
            );
            assert_eq!(
                env.get("my.key").and_then(|v| v.downcast_ref::<String>()),
                Some(&"v".to_owned())
            );
            Ok(())
        })
    }));
    let server = TestServer::new(Builder::new().use_fn(later).run(setter));
    assert_eq!(server.get("/").send().await.unwrap().status(), 200);
    let (key, int, flag, tag, names) = seen.lock().unwrap().take().unwrap();
    assert_eq!(key.as_deref(), Some("v"));
    assert_eq!(int, Some(5));
    assert_eq!(flag, Some(true));
    assert!(tag);
    assert_eq!(names, vec!["my.flag", "my.int", "my.key", "my.tag"]);
}

#[tokio::test]
async fn unknown_keys_from_feature_based_code_reach_the_app_func() {
    let seen: Shared<Option<(Option<String>, Vec<String>)>> = shared();
    let earlier = Before(|ctx: &mut HttpContext| {
        let mut extras = Extras::default();
        extras.insert("my.key", Box::new("from features".to_owned()));
        ctx.features_mut().insert(extras);
    });
    let reader = {
        let seen = seen.clone();
        OwinApp::new(app_func(move |env: &mut Environment| {
            let seen = seen.clone();
            Box::pin(async move {
                let value = env
                    .get("my.key")
                    .and_then(|v| v.downcast_ref::<String>())
                    .cloned();
                *seen.lock().unwrap() = Some((value, env.keys()));
                Ok(())
            })
        }))
    };
    let server = TestServer::new(Builder::new().use_fn(earlier).run(reader));
    server.get("/").send().await.unwrap();
    let (value, listed) = seen.lock().unwrap().take().unwrap();
    assert_eq!(value.as_deref(), Some("from features"));
    assert_eq!(listed.last().map(String::as_str), Some("my.key"));
    assert_eq!(
        listed.iter().filter(|k| *k == "my.key").count(),
        1,
        "{listed:?}"
    );
}
