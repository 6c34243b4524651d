export function Placeholder({ title, text }: { title: string; text: string }): React.JSX.Element {
  return (
    <section className="placeholder">
      <h1>{title}</h1>
      <p>{text}</p>
    </section>
  )
}
