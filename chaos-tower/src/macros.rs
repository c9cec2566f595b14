//! Boilerplate shared by the crate's services.

/// `get_ref`, `get_mut` and `into_inner` for a service that wraps its inner service in a field `inner`, so
/// every service of the crate offers the same three (as tower-http's services do). Expands inside an
/// `impl<S, …> Service<S, …>` block.
macro_rules! inner_service_accessors {
    () => {
        /// The inner service.
        pub fn get_ref(&self) -> &S {
            &self.inner
        }

        /// The inner service, mutably.
        pub fn get_mut(&mut self) -> &mut S {
            &mut self.inner
        }

        /// Unwraps the inner service.
        pub fn into_inner(self) -> S {
            self.inner
        }
    };
}
