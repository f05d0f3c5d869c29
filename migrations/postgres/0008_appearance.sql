-- The widget's appearance, set by admins in the console and served to every widget by the
-- nodes. One row (id 1); no row = the widget's built-in look. '' in a text column = the
-- widget's default text.
CREATE TABLE widget_appearance (
    id             BIGINT PRIMARY KEY CHECK (id = 1),
    -- '#rrggbb' or '' (the default blue).
    color          TEXT NOT NULL DEFAULT '',
    greeting       TEXT NOT NULL DEFAULT '',
    -- Where the launcher sits: 'right' or 'left' (bottom corner).
    position       TEXT NOT NULL DEFAULT 'right' CHECK (position IN ('right', 'left')),
    launcher_text  TEXT NOT NULL DEFAULT '',
    -- Shown while nobody is there, for queues without an offline text of their own.
    offline_text   TEXT NOT NULL DEFAULT '',
    updated_at     BIGINT NOT NULL
);
