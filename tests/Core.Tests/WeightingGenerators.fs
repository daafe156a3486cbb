/// Generators of per-cluster gradients and the naive vector-space models the weighting solvers are
/// checked against (the solvers only ever see Gram matrices; these work on the vectors themselves).
module DiffusionFunctional.Core.Tests.WeightingGenerators

open DiffusionFunctional.Core.Weighting
open DiffusionFunctional.Core.Tests.Generators
open FsCheck.FSharp

let dot (a: float[]) (b: float[]) = Array.fold2 (fun acc x y -> acc + x * y) 0.0 a b
let norm (a: float[]) = sqrt (dot a a)
let axpy (alpha: float) (x: float[]) (y: float[]) = Array.map2 (fun xi yi -> yi + alpha * xi) x y
let quadratic (g: float[,]) (w: float[]) = DenseLinearAlgebra.quadraticForm g w

/// k gradients in R^d with entries in [-1, 1].
let genVectors k d = Gen.arrayOfLength k (Gen.arrayOfLength d (genFinite -1.0 1.0))

/// Continuous random gradients with d >= k: linearly independent with probability 1, so G is positive definite.
let genIndependent maxK = gen {
    let! k = Gen.choose (1, maxK)
    let! extra = Gen.choose (0, 4)
    return! genVectors k (k + extra) }

/// Gradients with the degenerate cases mixed in: fewer dimensions than tasks, small-integer entries
/// (ties, repeats, orthogonality), a duplicated gradient, a zero gradient, an exactly opposite pair.
let genAnyVectors maxK = gen {
    let! k = Gen.choose (1, maxK)
    let! d = Gen.choose (1, maxK + 2)
    let! vectors =
        Gen.oneof [ genVectors k d
                    Gen.arrayOfLength k (Gen.arrayOfLength d (Gen.choose (-2, 2) |> Gen.map float)) ]
    let! twist = Gen.choose (0, 3)
    let! a = Gen.choose (0, k - 1)
    let! b = Gen.choose (0, k - 1)
    match twist with
    | 1 when a <> b -> vectors.[b] <- Array.copy vectors.[a]
    | 2 -> vectors.[a] <- Array.zeroCreate d
    | 3 when a <> b -> vectors.[b] <- Array.map (fun x -> -x) vectors.[a]
    | _ -> ()
    return vectors }

/// Every point of the simplex in R^k (k <= 3) on a grid of step 1 / n.
let simplexGrid k n =
    match k with
    | 1 -> [ [| 1.0 |] ]
    | 2 -> [ for i in 0 .. n -> [| float i / float n; float (n - i) / float n |] ]
    | 3 -> [ for i in 0 .. n do
               for j in 0 .. n - i -> [| float i / float n; float j / float n; float (n - i - j) / float n |] ]
    | _ -> failwith "grid only for k <= 3"

/// PCGrad on explicit vectors, written straight from ANT section 4.2; docs/weightings.md.
let naivePcGrad (vectors: float[][]) (orders: int[][]) =
    vectors |> Array.mapi (fun i gi ->
        let mutable projected = Array.copy gi
        for j in orders.[i] do
            if j <> i then
                let gj = vectors.[j]
                let d = dot projected gj
                if d < 0.0 then projected <- axpy (-d / dot gj gj) gj projected
        projected)

let maxAbs (g: float[,]) = g |> Seq.cast<float> |> Seq.fold (fun acc x -> max acc (abs x)) 0.0

let onSimplex (w: float[]) = w |> Array.forall (fun x -> x >= 0.0) && abs (Array.sum w - 1.0) < 1e-12
let onSimplexLoose (w: float[]) = w |> Array.forall (fun x -> x >= 0.0) && abs (Array.sum w - 1.0) < 1e-9

/// The Gram matrix a trainer would compute in float32: the vectors rounded to float32, every entry
/// accumulated in float32, G[i,j] and G[j,i] summed in opposite orders (so slightly asymmetric and
/// possibly slightly indefinite).
let float32Gram (vectors: float[][]) =
    let v = vectors |> Array.map (Array.map float32)
    let k = v.Length
    Array2D.init k k (fun i j ->
        let mutable s = 0.0f
        let d = v.[i].Length
        if i <= j then (for p in 0 .. d - 1 do s <- s + v.[i].[p] * v.[j].[p])
        else (for p in d - 1 .. -1 .. 0 do s <- s + v.[i].[p] * v.[j].[p])
        float s)

/// Degenerate-prone gradients in up to 300 dimensions, as float32 Gram matrices.
let genFloat32Gram = gen {
    let! k = Gen.choose (1, 8)
    let! d = Gen.choose (1, 300)
    let! vectors = genVectors k d
    let! twist = Gen.choose (0, 3)
    match twist with
    | 1 when k > 1 -> vectors.[1] <- Array.copy vectors.[0]
    | 2 -> vectors.[0] <- Array.zeroCreate d
    | 3 when k > 1 -> vectors.[1] <- Array.map (fun x -> -x) vectors.[0]
    | _ -> ()
    return float32Gram vectors }
